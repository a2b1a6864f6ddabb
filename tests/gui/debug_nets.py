"""Small nets and solvers for the debugger tests (text prototxt, no files)."""
from __future__ import annotations

import pathlib

import engine

ROOT = pathlib.Path(__file__).resolve().parents[2]
SPIRAL = ROOT / "resources" / "examples" / "spiral_mlp" / "solver.prototxt"

#: A 2-8-8-3 net with a shuffling data layer and Dropout, so that the data cursor
#: and the random stream both decide the next iteration's numbers.
SHUFFLE_DROPOUT_NET = """
name: "shuffle_dropout"
layer { name: "data" type: "BuiltinData" top: "data" top: "label"
  builtin_data_param { dataset: "blobs" num_points: 60 noise: 0.3 num_classes: 3 seed: 4
                       test_fraction: 0 batch_size: 16 shuffle: true } }
layer { name: "ip1" type: "InnerProduct" bottom: "data" top: "ip1"
  inner_product_param { num_output: 8 weight_filler { type: "gaussian" std: 0.5 }
                        bias_filler { type: "constant" value: 0.1 } } }
layer { name: "tanh1" type: "TanH" bottom: "ip1" top: "ip1" }
layer { name: "drop1" type: "Dropout" bottom: "ip1" top: "ip1" dropout_param { dropout_ratio: 0.3 } }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
  inner_product_param { num_output: 8 weight_filler { type: "gaussian" std: 0.5 }
                        bias_filler { type: "constant" value: 0.1 } } }
layer { name: "relu2" type: "ReLU" bottom: "ip2" top: "ip2" }
layer { name: "ip3" type: "InnerProduct" bottom: "ip2" top: "ip3"
  inner_product_param { num_output: 3 weight_filler { type: "gaussian" std: 0.5 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip3" bottom: "label" top: "loss" }
"""


def solver_text(net: str = SHUFFLE_DROPOUT_NET, **fields) -> str:
    settings = {"type": '"SGD"', "base_lr": 0.1, "momentum": 0.9, "weight_decay": 0.001,
                "lr_policy": '"step"', "gamma": 0.5, "stepsize": 7, "average_loss": 4, "random_seed": 11}
    settings.update({k: (f'"{v}"' if isinstance(v, str) and not v.startswith('"') else v)
                     for k, v in fields.items()})
    lines = [f"{k}: {v}" for k, v in settings.items()]
    return "net_param {\n" + net + "\n}\n" + "\n".join(lines) + "\n"


def make_solver(tmp_path, net: str = SHUFFLE_DROPOUT_NET, **fields):
    path = tmp_path / "solver.prototxt"
    path.write_text(solver_text(net, **fields))
    return engine.get_solver(str(path))


def spiral_solver():
    return engine.get_solver(str(SPIRAL))


def weights(solver) -> list:
    return [b.data.copy() for b in solver.net.learnable_params]
