"""Caffe's InsertSplits: when one top feeds several bottoms, route it through a
Split layer so the consumers' diffs are summed on the way back."""
from __future__ import annotations

from collections import Counter

from .errors import NetDefinitionError
from .proto import caffe_pb2


def split_layer_name(layer: str, blob: str, top_index: int) -> str:
    return f"{blob}_{layer}_{top_index}_split"


def split_blob_name(layer: str, blob: str, top_index: int, split_index: int) -> str:
    return f"{blob}_{layer}_{top_index}_split_{split_index}"


def insert_splits(net: caffe_pb2.NetParameter) -> caffe_pb2.NetParameter:
    """A copy of ``net`` with Split layers inserted (names as Caffe gives them)."""
    last_producer: dict[str, tuple[int, int]] = {}
    source_of: dict[tuple[int, int], tuple[int, int]] = {}
    consumers: Counter = Counter()
    loss_weight_of: dict[tuple[int, int], float] = {}
    for i, layer in enumerate(net.layer):
        for j, bottom in enumerate(layer.bottom):
            if bottom not in last_producer:
                known = ", ".join(sorted(last_producer)) or "none"
                raise NetDefinitionError(
                    f"layer '{layer.name}' ({layer.type}): bottom blob '{bottom}' is not produced by "
                    f"any earlier layer (blobs defined so far: {known})")
            source_of[(i, j)] = last_producer[bottom]
            consumers[last_producer[bottom]] += 1
        for j, top in enumerate(layer.top):
            last_producer[top] = (i, j)
            weight = layer.loss_weight[j] if j < len(layer.loss_weight) else 0.0
            loss_weight_of[(i, j)] = weight
            if weight:
                consumers[(i, j)] += 1
    result = caffe_pb2.NetParameter()
    result.CopyFrom(net)
    del result.layer[:]
    next_split: Counter = Counter()
    for i, layer in enumerate(net.layer):
        copy = result.layer.add()
        copy.CopyFrom(layer)
        for j, bottom in enumerate(layer.bottom):
            source = source_of[(i, j)]
            if consumers[source] > 1:
                src_layer = net.layer[source[0]].name
                copy.bottom[j] = split_blob_name(src_layer, bottom, source[1], next_split[source])
                next_split[source] += 1
        for j, top in enumerate(layer.top):
            count = consumers[(i, j)]
            if count <= 1:
                continue
            split = result.layer.add()
            split.name = split_layer_name(layer.name, top, j)
            split.type = "Split"
            split.bottom.append(top)
            weight = loss_weight_of[(i, j)]
            for k in range(count):
                split.top.append(split_blob_name(layer.name, top, j, k))
                if weight:
                    split.loss_weight.append(weight if k == 0 else 0.0)
            if weight:
                del copy.loss_weight[:]
                next_split[(i, j)] += 1
    return result
