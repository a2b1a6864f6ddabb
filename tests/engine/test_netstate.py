"""NetState rules as Caffe's Net::StateMeetsRule / FilterNet: phase, level range,
stage / not_stage, several include rules (OR), exclude rules; the solver's
train_state / test_state; ``--stage`` / ``--level`` on the command line."""
from __future__ import annotations

import pytest
from google.protobuf import text_format

import engine
from engine import cli
from engine.net import filter_net, state_meets_rule
from engine.proto import caffe_pb2


def _state(phase="TEST", level=0, stages=()):
    return caffe_pb2.NetState(phase=caffe_pb2.Phase.Value(phase), level=level, stage=list(stages))


def _rule(text: str):
    rule = caffe_pb2.NetStateRule()
    text_format.Parse(text, rule)
    return rule


# (rule, state, meets): written out by hand from Caffe's rule semantics: a rule is
# met when the state has the rule's phase (if set), a level in [min_level,
# max_level] (each if set), ALL of the rule's stages and NONE of its not_stages.
TRUTH_TABLE = [
    ("", _state(), True),
    ("phase: TRAIN", _state("TRAIN"), True),
    ("phase: TRAIN", _state("TEST"), False),
    ("min_level: 1", _state(level=0), False),
    ("min_level: 1", _state(level=1), True),
    ("max_level: 1", _state(level=1), True),
    ("max_level: 1", _state(level=2), False),
    ("min_level: -1 max_level: 1", _state(level=-1), True),
    ("min_level: 2 max_level: 1", _state(level=1), False),
    ('stage: "a"', _state(), False),
    ('stage: "a"', _state(stages=["a"]), True),
    ('stage: "a" stage: "b"', _state(stages=["a"]), False),
    ('stage: "a" stage: "b"', _state(stages=["b", "c", "a"]), True),
    ('not_stage: "a"', _state(), True),
    ('not_stage: "a"', _state(stages=["b"]), True),
    ('not_stage: "a"', _state(stages=["b", "a"]), False),
    ('stage: "a" not_stage: "b"', _state(stages=["a"]), True),
    ('stage: "a" not_stage: "b"', _state(stages=["a", "b"]), False),
    ('phase: TEST stage: "deploy" max_level: 0', _state("TEST", 0, ["deploy"]), True),
    ('phase: TEST stage: "deploy" max_level: 0', _state("TEST", 1, ["deploy"]), False),
    ('phase: TEST stage: "deploy" max_level: 0', _state("TRAIN", 0, ["deploy"]), False),
]


@pytest.mark.parametrize("rule, state, meets", TRUTH_TABLE)
def test_state_meets_rule_truth_table(rule, state, meets):
    assert state_meets_rule(state, _rule(rule)) is meets


INPUT = 'layer { name: "input" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 } } }\n'


def _relu(name: str, rules: str) -> str:
    return f'layer {{ name: "{name}" type: "ReLU" bottom: "data" top: "{name}" {rules} }}\n'


NET = INPUT + "".join([
    _relu("always", ""),
    _relu("train_or_val", 'include { phase: TRAIN } include { stage: "val" }'),   # OR of two rules
    _relu("not_deploy", 'exclude { stage: "deploy" }'),
    _relu("not_deploy_low", 'exclude { stage: "deploy" } exclude { max_level: 0 }'),  # any exclude wins
    _relu("level_1_to_2", "include { min_level: 1 max_level: 2 }"),
    _relu("test_not_val", 'include { phase: TEST not_stage: "val" }'),
])


def _built(net) -> list[str]:
    """The layers of NET that were built (not the input, not the inserted splits)."""
    return [layer.name for layer in net.layers if layer.type_name == "ReLU"]


@pytest.mark.parametrize("phase, level, stages, expected", [
    (engine.TRAIN, None, [], ["always", "train_or_val", "not_deploy"]),
    (engine.TEST, None, [], ["always", "not_deploy", "test_not_val"]),
    (engine.TEST, None, ["val"], ["always", "train_or_val", "not_deploy"]),
    (engine.TEST, 1, ["deploy"], ["always", "level_1_to_2", "test_not_val"]),
    (engine.TEST, 1, [], ["always", "not_deploy", "not_deploy_low", "level_1_to_2", "test_not_val"]),
    (engine.TRAIN, 3, ["val", "deploy"], ["always", "train_or_val"]),
])
def test_net_built_with_stages_and_level(phase, level, stages, expected):
    assert _built(engine.Net(NET, phase, level=level, stages=stages)) == expected


def test_include_and_exclude_together_are_refused():
    param = caffe_pb2.NetParameter()
    text_format.Parse(_relu("both", 'include { phase: TRAIN } exclude { phase: TEST }'), param)
    with pytest.raises(engine.NetDefinitionError, match="both include and exclude"):
        filter_net(param, _state())


def test_the_files_own_state_adds_its_stages_and_level():
    """Caffe's Net(file, phase, level, stages): the file's state, phase set, stages added."""
    text = 'state { stage: "val" level: 1 }\n' + NET
    assert _built(engine.Net(text, engine.TEST)) == \
        ["always", "train_or_val", "not_deploy", "not_deploy_low", "level_1_to_2"]
    assert _built(engine.Net(text, engine.TEST, level=0)) == ["always", "train_or_val", "not_deploy"]


def _solver(tmp_path, extra: str) -> str:
    net = INPUT.replace("dim: 2 dim: 3", "dim: 2 dim: 3") + "".join([
        _relu("r_deploy", 'include { stage: "deploy" }'),
        _relu("r_level", "include { min_level: 2 }"),
        'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 1 } }\n',
        'layer { name: "target" type: "DummyData" top: "t" dummy_data_param { shape { dim: 2 dim: 1 } } }\n',
        'layer { name: "loss" type: "EuclideanLoss" bottom: "ip" bottom: "t" top: "loss" }\n'])
    (tmp_path / "net.prototxt").write_text(net)
    path = tmp_path / "solver.prototxt"
    path.write_text('net: "net.prototxt"\nbase_lr: 0.1\nmax_iter: 1\ntest_iter: 1\ntest_iter: 1\n'
                    'test_interval: 100\n' + extra)
    return str(path)


def _names(net):
    return [layer.name for layer in net.layers if layer.name.startswith("r_")]


def test_solver_train_state_and_test_state(tmp_path):
    solver = engine.get_solver(_solver(tmp_path, 'train_state { stage: "deploy" }\n'
                                                 'test_state { level: 2 } test_state { stage: "deploy" level: 3 }'))
    assert _names(solver.net) == ["r_deploy"]
    assert solver.net.phase == engine.TRAIN
    assert [_names(net) for net in solver.test_nets] == [["r_level"], ["r_deploy", "r_level"]]
    assert all(net.phase == engine.TEST for net in solver.test_nets)
    with pytest.raises(engine.NetDefinitionError, match="once per test net"):
        engine.get_solver(_solver(tmp_path, "test_state { level: 2 }"))


def test_cli_stage_and_level_reach_the_nets(tmp_path, capsys):
    path = _solver(tmp_path, 'snapshot_prefix: "snap"\ndisplay: 0\n')
    model = tmp_path / "net.prototxt"
    weights = tmp_path / "w.caffemodel"
    engine.Net(str(model), engine.TEST).save(str(weights))

    def tested_outputs(*extra):
        code = cli.main(["test", "--model", str(model), "--weights", str(weights), "--iterations", "1", *extra])
        assert code == 0
        out = capsys.readouterr().out
        return sorted({line.split(",")[1].split("=")[0].strip() for line in out.splitlines()
                       if line.startswith("Batch 0, r_")})

    assert tested_outputs("--stage", "deploy", "--level", "2") == ["r_deploy", "r_level"]
    assert tested_outputs("--stage", "other,deploy") == ["r_deploy"]
    assert tested_outputs("--level", "2") == ["r_level"]
    assert tested_outputs() == []
    assert cli.main(["train", "--solver", path, "--stage", "deploy", "--iterations", "1"]) == 0
    written = caffe_pb2.NetParameter.FromString((tmp_path / "snap_iter_1.caffemodel").read_bytes())
    assert [layer.name for layer in written.layer if layer.name.startswith("r_")] == ["r_deploy"]
