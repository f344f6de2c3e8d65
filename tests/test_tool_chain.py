"""The whole tool chain, one shipped config per task and method family:
``train.py`` (pruning) -> ``train.py --resume`` -> ``test.py`` ->
``export.py`` -> ``pruning_report.py``, on tiny generated data with the
settings of ``tools/analysis/config_matrix.py`` (which runs every config)."""
import os.path as osp

import onnx
import pytest
import torch

from test_tools_and_readme import load_tool

matrix = load_tool('analysis/config_matrix')


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('chain_data'))
    return lambda kind: matrix.write_tiny_data(root, kind)


def chain(config, tiny_data, work_dir, load_from=None, steps=matrix.STEPS):
    """Run the chain (exporting to ONNX only: the matrix script checks
    torch.export too); every step that applies must pass."""
    kind = matrix.data_kind(matrix.read_config(config))
    result = matrix.run_chain(config, tiny_data(kind), str(work_dir),
                              load_from, steps=steps, formats=['onnx'])
    failed = {step: result[step].get('traceback') for step in matrix.STEPS
              if result[step]['ok'] is False}
    assert not failed, '\n'.join(f'{k}: {v}' for k, v in failed.items())
    return result


def conv_shapes(state_dict):
    return sorted(tuple(v.shape) for v in state_dict.values() if v.ndim == 4)


def exported_conv_shapes(work_dir, name='model'):
    path = osp.join(str(work_dir), 'deploy', f'{name}.onnx')
    return sorted(tuple(i.dims) for i in onnx.load(path).graph.initializer
                  if len(i.dims) == 4)


def check_exported(result, work_dir, name='model'):
    """The exported network is the one of the last checkpoint."""
    state = torch.load(result['checkpoint'], weights_only=True)
    assert exported_conv_shapes(work_dir, name) == conv_shapes(
        state['state_dict'])
    return state


# one from scratch (the hook's family: PGP, L1 and PSFP share its code path)
# and one from a trained baseline; config_matrix.py runs every config
@pytest.mark.parametrize('method', ['rpgp', 'taylor'])
def test_classifier_chain(method, tiny_data, tmp_path):
    result = chain(f'classification/lenet5_mnist_{method}.py', tiny_data,
                   tmp_path)
    assert result['resume']['ok'] and result['report']['ok']
    assert osp.dirname(result['checkpoint']) == str(tmp_path / 'resumed')
    state = check_exported(result, tmp_path)
    assert state['pruning']['finished']
    assert sum(s[0] for s in conv_shapes(state['state_dict'])) < 6 + 16 + 120
    assert 'backbone.features.0' in result['report']['value'][0]
    accuracy = result['test']['value']['accuracy/top1']
    assert 0 <= accuracy <= 100


def test_detector_chain(tiny_data, tmp_path):
    result = chain('demo/faster_rcnn_vgg16_shapes_rpgp.py', tiny_data,
                   tmp_path)
    state = check_exported(result, tmp_path, 'features')
    assert state['pruning']['finished']
    info = result['export']['value']
    assert info['task'] == 'detection' and 'pascal_voc/mAP' in result[
        'test']['value']


def test_domain_adaptation_chain(tiny_data, tmp_path):
    result = chain('domain_adaptation/vgg16_digits_uci2mnist_rpgp.py',
                   tiny_data, tmp_path)
    state = check_exported(result, tmp_path)
    full = matrix.tiny_config(
        'domain_adaptation/vgg16_digits_uci2mnist_rpgp.py',
        tiny_data('digits'), str(tmp_path / 'unused'))
    assert state['state_dict']['neck.fc.weight'].shape[0] < \
        full.model.neck.out_channels
    assert result['export']['value']['data_preprocessor']['std'] == [127.5] * 3


def test_gal_three_stages_chain(tiny_data, tmp_path):
    """baseline (trained only) -> GAL (tested and exported with the
    fine-tune config) -> fine-tune, each from the previous result."""
    baseline = chain('gal/lenet5_mnist_gal_baseline.py', tiny_data,
                     tmp_path / 'baseline', steps=['train'])
    gal = chain('gal/lenet5_mnist_gal-0.05.py', tiny_data, tmp_path / 'gal',
                baseline['checkpoint'])
    tuned = chain('gal/lenet5_mnist_gal-0.05_finetune.py', tiny_data,
                  tmp_path / 'finetune', gal['checkpoint'])
    pruned = torch.load(gal['checkpoint'], weights_only=True)
    assert pruned['architecture']
    assert exported_conv_shapes(tmp_path / 'gal') == conv_shapes(
        pruned['state_dict'])
    state = torch.load(tuned['checkpoint'], weights_only=True)
    assert conv_shapes(state['state_dict']) == conv_shapes(
        pruned['state_dict'])
    assert exported_conv_shapes(tmp_path / 'finetune') == conv_shapes(
        state['state_dict'])


def test_dcp_three_stages_chain(tiny_data, tmp_path):
    """stage 1 -> channel selection (tested and exported with the stage-3
    config) -> fine-tune, the stage-3 result exported pruned."""
    stage1 = chain('dcp/lenet5_mnist_dcp_stage1.py', tiny_data,
                   tmp_path / 'stage1', steps=['train'])
    stage2 = chain('dcp/lenet5_mnist_dcp_stage2.py', tiny_data,
                   tmp_path / 'stage2', stage1['checkpoint'])
    stage3 = chain('dcp/lenet5_mnist_dcp_stage3.py', tiny_data,
                   tmp_path / 'stage3', stage2['checkpoint'])
    check_exported(stage2, tmp_path / 'stage2')
    state = check_exported(stage3, tmp_path / 'stage3')
    # 16 -> 8 input channels of conv3 (pruning_rate 0.5)
    assert state['state_dict']['backbone.features.6.weight'].shape[1] == 8
