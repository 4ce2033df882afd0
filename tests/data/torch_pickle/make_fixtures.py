#!/usr/bin/python3
"""Writes the torch.save fixtures read by tests/core/reid/torch_pickle_test.cpp.

Run with a Python that has torch (Debian's /usr/bin/python3 with torch 1.13 made the committed
files):  /usr/bin/python3 tests/data/torch_pickle/make_fixtures.py
The C++ tests never run Python: they read the committed .pt files and expected.json, which holds,
per fixture and in the file's key order, each tensor's shape, dtype (LibTorch ScalarType name),
sum as float64 and, for small tensors, every value, so the reader is checked on values.
"""

import collections
import json
import os

import torch

HERE = os.path.dirname(os.path.abspath(__file__))

# LibTorch's c10::toString(ScalarType) names, what the C++ test compares against.
DTYPE_NAMES = {
    torch.float32: "Float",
    torch.float64: "Double",
    torch.float16: "Half",
    torch.bfloat16: "BFloat16",
    torch.int64: "Long",
    torch.int32: "Int",
    torch.int16: "Short",
    torch.int8: "Char",
    torch.uint8: "Byte",
    torch.bool: "Bool",
}
MAX_LISTED_VALUES = 64  # larger tensors are checked by shape, dtype and sum only


def describe(state):
    out = []
    for key, t in state.items():
        t = t.detach()
        entry = {
            "key": key,
            "shape": list(t.shape),
            "dtype": DTYPE_NAMES[t.dtype],
            "sum": float(t.double().sum().item()),
        }
        if t.numel() <= MAX_LISTED_VALUES:
            # float64 holds every value of every dtype above exactly.
            entry["values"] = [float(v) for v in t.double().flatten().tolist()]
        out.append(entry)
    return out


class Block(torch.nn.Module):
    """A torchvision BasicBlock in miniature: the names mimic resnet's layer1.0.* keys."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(cout)
        self.conv2 = torch.nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(cout)
        self.relu = torch.nn.ReLU()
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = torch.nn.Sequential(
                torch.nn.Conv2d(cin, cout, 1, stride, bias=False), torch.nn.BatchNorm2d(cout))

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(y)) + idt)


class TinyResNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 2, 3, 2, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(2)
        self.relu = torch.nn.ReLU()
        self.layer1 = torch.nn.Sequential(Block(2, 3, 2))  # with a downsample branch
        self.fc = torch.nn.Linear(3, 2)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer1(x)
        return self.fc(x.mean((2, 3)))


def tiny_resnet_state():
    model = TinyResNet()
    model.train()
    with torch.no_grad():
        for _ in range(3):  # moves running stats off 0/1 and num_batches_tracked to 3
            model(torch.randn(2, 3, 8, 8))
    return model.state_dict()


def main():
    torch.manual_seed(0)
    expected = {}

    def save(name, obj, state=None, **kwargs):
        torch.save(obj, os.path.join(HERE, name), **kwargs)
        if state is not None:
            expected[name] = describe(state)

    # (a) model.state_dict(): an OrderedDict pickled with its _metadata state (REDUCE + BUILD).
    resnet = tiny_resnet_state()
    save("resnet_like.pt", resnet, resnet)

    # The real thing in its smallest form: nn.Linear(3, 2).state_dict().
    linear = torch.nn.Linear(3, 2).state_dict()
    save("linear.pt", linear, linear)

    # (b) a plain dict, with a Parameter (_rebuild_parameter) and a 0-d int64 tensor.
    plain = {
        "w": torch.randn(2, 3),
        "p": torch.nn.Parameter(torch.randn(3)),
        "step": torch.tensor(5),
    }
    save("plain_dict.pt", plain, plain)

    # (c) training checkpoints wrapping the state_dict, with the usual non-tensor neighbours.
    wrapped = torch.nn.Linear(2, 2).state_dict()
    checkpoint = {
        "epoch": 3,
        "state_dict": wrapped,
        "best_acc": 0.875,
        "milestones": [30, 60],
        "arch": "resnet",
        "amp": True,
        "scheduler": None,
        "seen_images": 2**40,  # LONG1
        "optimizer": {"state": {}, "param_groups": [{"lr": 0.01, "params": [0, 1]}]},
    }
    save("wrapped_state_dict.pt", checkpoint, wrapped)
    model_wrapped = torch.nn.Linear(2, 1).state_dict()
    save("wrapped_model.pt", {"model": model_wrapped, "epoch": 1}, model_wrapped)

    # (d) views of one storage: an offset, a non-contiguous stride, a transpose.
    t = torch.arange(24.0).reshape(4, 6)
    shared = {"a": t, "b": t[1:, ::2], "c": t.t()}
    save("shared_storage.pt", shared, shared)

    # (e) every storage type the reader supports.
    base = torch.tensor([-2.5, -1.0, 0.0, 0.5, 1.0, 3.0])
    dtypes = {
        "f16": base.half(),
        "bf16": base.bfloat16(),
        "f64": base.double() / 3.0,
        "i64": torch.tensor([-(2**40), -1, 0, 7, 2**40]),
        "i32": torch.tensor([-(2**31), 0, 2**31 - 1], dtype=torch.int32),
        "i16": torch.tensor([-300, 300], dtype=torch.int16),
        "i8": torch.tensor([-128, 127], dtype=torch.int8),
        "u8": torch.tensor([0, 7, 255], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "empty": torch.zeros(0, 3),
    }
    save("dtypes.pt", dtypes, dtypes)

    # Protocol 4: FRAME, MEMOIZE, STACK_GLOBAL, SHORT_BINUNICODE.
    save("protocol4.pt", linear, linear, pickle_protocol=4)

    # (f) the legacy (pre-1.6) format, which the reader must refuse with a clear message.
    save("legacy.pt", linear, None, _use_new_zipfile_serialization=False)

    # (g) a dict with a non-tensor value and no state_dict/model wrapper key.
    save("non_tensor.pt", {"weight": torch.ones(2), "epoch": 3}, None)

    # One tensor per line keeps the file small and its diffs readable.
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        f.write("{\n")
        for i, name in enumerate(sorted(expected)):
            f.write(' "%s": [\n' % name)
            rows = [json.dumps(e, sort_keys=True) for e in expected[name]]
            f.write(",\n".join("  " + r for r in rows))
            f.write("\n ]%s\n" % ("," if i + 1 < len(expected) else ""))
        f.write("}\n")


if __name__ == "__main__":
    main()
