"""PascalVOC from the devkit layout, checked before any image is read.

mmdet's ``VOCDataset`` fails on the first missing file it meets, deep inside
the data loading, with an XML parser or file error. This variant checks the
split file and every annotation of the split when the dataset is built (before
training starts) and names what is missing.
"""
import os.path as osp

from mmdet.datasets import VOCDataset
from mmdet.registry import DATASETS
from mmengine.fileio import list_from_file


@DATASETS.register_module()
class CheckedVOCDataset(VOCDataset):
    """``VOCDataset`` that names missing split files, XMLs and JPEGs.

    With classes other than VOC's twenty (``metainfo=dict(classes=...)``) the
    VOC2007/VOC2012 dataset type is dropped, so that ``VOCMetric`` reports
    per-class AP under the dataset's own class names.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if tuple(self._metainfo['classes']) != tuple(
                VOCDataset.METAINFO['classes']):
            self._metainfo['dataset_type'] = None

    def load_data_list(self):
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(
                f'{type(self).__name__}: split file {self.ann_file!r} does '
                'not exist (expected VOCdevkit/VOC20xx/ImageSets/Main/'
                '<split>.txt)')
        ids = list_from_file(self.ann_file)
        for subdir, ext in ((self.ann_subdir, 'xml'), (self.img_subdir,
                                                        'jpg')):
            folder = osp.join(self.sub_data_root, subdir)
            missing = [
                i for i in ids
                if not osp.isfile(osp.join(folder, f'{i}.{ext}'))
            ]
            if missing:
                raise FileNotFoundError(
                    f'{type(self).__name__}: {len(missing)} of {len(ids)} '
                    f'images of {osp.basename(self.ann_file)} have no '
                    f'{folder}/<id>.{ext}, e.g. {missing[:3]}')
        return super().load_data_list()
