"""``tools/analysis/measure_latency.py`` on a pruned ResNet-20 checkpoint
against its unpruned reference: the rows, the FLOPs and parameters it
reports and where the input shape comes from. Nothing is timed against a
threshold."""
import pytest
import torch
from mmengine.registry import DefaultScope

from models import build_classifier
from prunedet.pruning.flops import count_params, measure_flops
from prunedet.pruning.tracing import tensor_forward
from test_deployment import pruned_resnet20
from test_tools_and_readme import load_tool

tool = load_tool('analysis/measure_latency')


def run(argv):
    # init_model sets the process-wide default scope and --threads torch's
    # threads; keep both to this call
    threads = torch.get_num_threads()
    try:
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            return tool.main(argv)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def checkpoints(tmp_path):
    config, pruned_ckpt, pruned = pruned_resnet20(tmp_path)
    full = build_classifier('resnet20')[0]
    torch.save({'state_dict': full.state_dict()}, str(tmp_path / 'full.pth'))
    hooked = tmp_path / 'with_hook.py'  # names the input shape
    hooked.write_text(open(config).read() + "custom_hooks = [dict(type="
                      "'ProgressivePruningHook', input_shape=(3, 32, 32))]\n")
    return config, str(tmp_path / 'full.pth'), str(hooked), pruned_ckpt, \
        full.eval(), pruned.eval()


def test_rows_against_the_reference(checkpoints, capsys):
    config, full_ckpt, hooked, pruned_ckpt, full, pruned = checkpoints
    rows = run(['--reference', config, full_ckpt, '--models', hooked,
                pruned_ckpt, '--names', 'pruned', '--runtime', 'eager',
                'onnxruntime', '--repeats', '2', '--threads', '1'])
    assert [(r['model'], r['runtime']) for r in rows] == [
        ('resnet20 (reference)', 'eager'), ('pruned', 'eager'),
        ('resnet20 (reference)', 'onnxruntime'), ('pruned', 'onnxruntime')]
    x = torch.zeros(1, 3, 32, 32)  # the hook's input_shape was used
    flops = measure_flops(pruned, x, tensor_forward)[0] / measure_flops(
        full, x, tensor_forward)[0]
    assert flops < 0.9
    for ref, row in zip(rows[::2], rows[1::2]):
        assert ref['flops_ratio'] == 1. and ref['latency_ratio'] == 1.
        assert ref['params'] == count_params(full)
        assert row['params'] == count_params(pruned) < ref['params']
        assert row['flops_ratio'] == pytest.approx(flops, rel=1e-9)
        assert row['latency_ratio'] == pytest.approx(row['ms'] / ref['ms'])
        assert row['latency_per_flops'] == pytest.approx(
            row['latency_ratio'] / flops)
    table = capsys.readouterr().out.splitlines()
    assert sum(line.startswith(('resnet20 (reference) |', 'pruned |'))
               for line in table) == 4


def test_input_shape_needed(checkpoints):
    config, full_ckpt, _, pruned_ckpt, _, _ = checkpoints
    with pytest.raises(ValueError, match='--shape C H W'):
        run(['--reference', config, full_ckpt, '--models', config,
             pruned_ckpt, '--repeats', '1'])
    with pytest.raises(ValueError, match="unknown runtime 'tvm'"):
        run(['--reference', config, full_ckpt, '--models', config,
             pruned_ckpt, '--shape', '3', '32', '32', '--runtime', 'tvm'])
    with pytest.raises(SystemExit):  # not a CONFIG CHECKPOINT pair
        run(['--reference', config, full_ckpt, '--models', config])


def test_models_timed_together_take_turns_in_a_new_order_each_round():
    """A fixed order charged the first model for the one before it (the
    same network timed first and last: 0.885 of each other)."""
    from prunedet.deploy.latency import median_times
    calls = []
    fns = [lambda i=i: calls.append(i) for i in range(4)]
    median_times(fns, repeats=30, warmup=0)
    rounds = [tuple(calls[k:k + 4]) for k in range(0, len(calls), 4)]
    assert all(sorted(r) == [0, 1, 2, 3] for r in rounds)
    assert {r[0] for r in rounds} == {0, 1, 2, 3}  # each goes first
    assert len(set(rounds)) > 5
    calls.clear()  # two alternate: each always follows the other
    median_times(fns[:2], repeats=10, warmup=0)
    assert calls == [0, 1] * 10


def test_timing_sessions_do_not_spin_wait(tmp_path):
    """Idle onnxruntime threads that spin take the cores from the next
    call timed (two identical sessions: 1.45-1.65 of each other)."""
    from prunedet.deploy.runtime import ort_session
    path = str(tmp_path / 'conv.onnx')
    torch.onnx.export(torch.nn.Conv2d(3, 4, 3), (torch.randn(1, 3, 8, 8), ),
                      path, dynamo=False)
    key = 'session.intra_op.allow_spinning'
    quiet = ort_session(path, 2, spinning=False).get_session_options()
    assert quiet.get_session_config_entry(key) == '0'
    default = ort_session(path, 2).get_session_options()
    with pytest.raises(RuntimeError):  # deployed: onnxruntime's default
        default.get_session_config_entry(key)
