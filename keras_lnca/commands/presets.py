"""`lnca presets`: the shipped presets, with task, channels, parameters and headline figures."""


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "presets",
        help="list the shipped presets (task, channels, parameters, headline figures)",
        description="Lists the presets shipped inside the package, read from their cards "
        "(<name>.json): the degradation each was trained for, its channels, trainable "
        "parameters and the figures measured when it was trained (baselines of the same run "
        "in brackets).",
    )
    parser.add_argument("--json", action="store_true", help="print the list as JSON")
    parser.set_defaults(func=run)


def run(args):
    import json

    from keras_lnca.models import presets

    rows = [presets.summary(name) for name in presets.list()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    defaults = {presets.default_for(1), presets.default_for(3)} if rows else set()
    for row in rows:
        mark = " (default of lnca restore)" if row["name"] in defaults else ""
        channels = {1: "gray", 3: "colour"}.get(row["channels"], "?")
        params = f"{row['parameters']:,}" if row["parameters"] else "?"
        print(f"{row['name']}{mark}")
        print(f"    task {row['task']}, {channels}, cell {row['cell']}, {params} parameters")
        for figure in row["headline"]:
            print(f"    {figure}")
    return 0
