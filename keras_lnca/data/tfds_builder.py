"""A tensorflow-datasets builder for the denoising / deblurring benchmark sets.

Import this module to register the `lnca_benchmarks` builder (it needs
`tensorflow-datasets`); the data are never downloaded by it: point
`manual_dir` at a copy of the images.
"""

import numpy as np
import tensorflow_datasets as tfds

from keras_lnca.data.io import list_images
from keras_lnca.data.io import read_raw

_DNCNN = "https://github.com/cszn/DnCNN"
_BSDS = (
    "https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/resources.html"
)

# name -> (channels, split, subfolder in the keras-lnca shared layout, homepage, description)
SETS = {
    "set12": (1, "test", "gray/set12", f"{_DNCNN}/tree/master/testsets/Set12",
              "The 12 classic grayscale test images (256x256 and 512x512)."),
    "bsd68": (1, "test", "gray/bsd68", f"{_DNCNN}/tree/master/testsets/BSD68",
              "BSD68: the grayscale test split of Roth and Black (481x321)."),
    "train400": (1, "train", "gray/train400",
                 f"{_DNCNN}/tree/master/TrainingCodes/DnCNN_TrainingCodes_v1.0/data/Train400",
                 "Train400: 400 grayscale 180x180 BSDS crops (DnCNN training set)."),
    "cbsd68": (3, "test", "color/cbsd68", _BSDS,
               "CBSD68: the colour originals of BSD68 (BSDS500 ids)."),
    "cbsd432": (3, "train", "color/cbsd432", _BSDS,
                "CBSD432: BSDS500 train+val+test minus the 68 CBSD68 images."),
}

_CITATION = """\
@article{zhang2017beyond,
  title={Beyond a {Gaussian} Denoiser: Residual Learning of Deep {CNN} for Image Denoising},
  author={Zhang, Kai and Zuo, Wangmeng and Chen, Yunjin and Meng, Deyu and Zhang, Lei},
  journal={IEEE Transactions on Image Processing}, volume={26}, number={7},
  pages={3142--3155}, year={2017}}
@article{arbelaez2011contour,
  title={Contour Detection and Hierarchical Image Segmentation},
  author={Arbelaez, Pablo and Maire, Michael and Fowlkes, Charless and Malik, Jitendra},
  journal={IEEE TPAMI}, volume={33}, number={5}, pages={898--916}, year={2011}}
"""


class LncaBenchmarks(tfds.core.GeneratorBasedBuilder):
    """Image-restoration benchmark sets read from a manual download.

    Configs: `set12`, `bsd68`, `train400` (grayscale, DnCNN distribution)
    and `cbsd68`, `cbsd432` (colour, BSDS500). Test sets have a `test`
    split, training sets a `train` split. Each example is `{"image": uint8
    H x W x C, "file_name": str}`, in sorted file order (shuffling is
    disabled); 16-bit files are
    rounded to 8 bits, alpha is dropped, colour/gray is converted to the
    config's channels.

    `manual_dir` may be the image folder itself, a folder holding
    `<config name>/` (e.g. `set12/`), or the keras-lnca shared data folder
    (`gray/set12/`, `color/cbsd68/`, ...).

    Example:

    >>> import tensorflow_datasets as tfds
    >>> from keras_lnca.data import tfds_builder
    >>> builder = tfds_builder.LncaBenchmarks(config="set12", data_dir="/tmp/tfds")  # doctest: +SKIP
    >>> builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
    ...     manual_dir="../shared/data"))  # doctest: +SKIP
    >>> ds = builder.as_dataset(split="test")  # doctest: +SKIP
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [
        tfds.core.BuilderConfig(name=name, description=spec[4]) for name, spec in SETS.items()
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
Download the images and point `manual_dir` at them (no automatic download):
* set12, bsd68: the PNGs in {_DNCNN}/tree/master/testsets (folders Set12, BSD68).
* train400: {_DNCNN}/tree/master/TrainingCodes/DnCNN_TrainingCodes_v1.0/data/Train400
* cbsd68, cbsd432: the BSDS500 images (BSR_bsds500.tgz) from {_BSDS};
  CBSD68 is the 68 colour originals of the BSD68 test images, CBSD432 the
  other 432 images of train + val + test.
`manual_dir` may be the image folder, a folder holding `<config name>/`, or
the keras-lnca shared layout (`gray/set12`, `color/cbsd68`, ...).
"""

    def _info(self):
        channels, _, _, homepage, description = SETS[self.builder_config.name]
        return tfds.core.DatasetInfo(
            builder=self,
            description=description,
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(None, None, channels), dtype=np.uint8),
                "file_name": tfds.features.Text(),
            }),
            homepage=homepage,
            citation=_CITATION,
            disable_shuffling=True,  # keep sorted file order
        )

    def _image_folder(self, manual_dir):
        name = self.builder_config.name
        candidates = [manual_dir / name, manual_dir / SETS[name][2], manual_dir]
        for folder in candidates:
            if folder.is_dir() and list_images(folder):
                return folder
        raise FileNotFoundError(
            f"no images for {name!r} in {manual_dir} (looked in "
            + ", ".join(str(c) for c in candidates) + ")\n" + self.MANUAL_DOWNLOAD_INSTRUCTIONS
        )

    def _split_generators(self, dl_manager):
        from pathlib import Path

        folder = self._image_folder(Path(dl_manager.manual_dir))
        return {SETS[self.builder_config.name][1]: self._generate_examples(folder)}

    def _generate_examples(self, folder):
        from keras_lnca.data.io import convert_channels

        channels = SETS[self.builder_config.name][0]
        for path in list_images(folder):
            array, scale = read_raw(path)
            if scale != 255:
                array = np.round(np.clip(array.astype(np.float64) / scale, 0, 1) * 255)
            array = convert_channels(array.astype(np.uint8), channels)
            yield path.name, {"image": array, "file_name": path.name}
