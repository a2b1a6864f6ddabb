"""One sample's share of an InnerProduct layer's three backward products (Qt-free).

The seed's products are sums over the M_ samples of a batch (Caffe's names):

    dW = Σₘ δₘᵀ·aₘ        (N_×K_; K_×N_ when ``transpose``)
    db = Σₘ δₘ            (N_)
    δ_down[m] = δₘ·W      (row m is sample m's alone)

Everything here is taken apart from the arrays the engine produced in that
iteration (an :class:`gui.model.frames.InnerProductView`: a, δ, dW, db, δ_down
and W as captured), never from a second forward or backward. Sums are float64,
so they equal the engine's float32 products up to float32 rounding.

:func:`batch_outcome` reads the loss layer's inputs (scores and labels) from
the net as the last forward left them: per-sample loss and prediction and the
batch's confusion matrix. :func:`sample_path` reads sample m's δ row at every
blob of the net, from the loss down to the input.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy

from engine.backend import to_numpy
from gui.model.frames import InnerProductView

#: Loss types whose bottoms are (class scores, integer labels).
CLASSIFIER_LOSSES = ("SoftmaxWithLoss",)


@dataclass
class SampleShare:
    """Sample ``m``'s share of one InnerProduct layer's backward products.

    ``delta_row`` (N_) = δₘ, ``a_row`` (K_) = aₘ; ``outer`` = δₘᵀ·aₘ in dW's own
    orientation (N_×K_, or K_×N_ when ``transpose``), ``db_share`` = δₘ (None
    without a bias), ``delta_down_row`` = the engine's row m of δ_down (None where
    the input takes no gradient) and ``delta_down_check`` = δₘ·W recomputed in
    float64 from the W the backward used (see :func:`weights_used`).
    """

    layer: str
    m: int
    batch_size: int
    delta_row: numpy.ndarray
    a_row: numpy.ndarray
    outer: numpy.ndarray
    db_share: numpy.ndarray | None
    delta_down_row: numpy.ndarray | None
    delta_down_check: numpy.ndarray | None
    transpose: bool = False

    def fraction_of(self, dW: numpy.ndarray) -> float:
        """‖δₘᵀ·aₘ‖ / ‖dW‖ (Frobenius): how large this sample's share is beside the whole sum."""
        norm = float(numpy.linalg.norm(numpy.asarray(dW, numpy.float64)))
        return float(numpy.linalg.norm(self.outer)) / norm if norm > 0 else 0.0


def has_pieces(view: InnerProductView) -> bool:
    """True when the view holds a and δ of a finished backward (the shares exist)."""
    return view.a is not None and view.delta is not None and not view.pending_backward


def batch_size(view: InnerProductView) -> int:
    return 0 if view.a is None else int(view.a.shape[0])


def outer_products(view: InnerProductView) -> numpy.ndarray:
    """(M_, rows, cols) float64: every sample's δₘᵀ·aₘ in dW's orientation; their sum is dW."""
    delta = numpy.asarray(view.delta, numpy.float64)
    a = numpy.asarray(view.a, numpy.float64)
    if view.transpose:
        return numpy.einsum("mk,mn->mkn", a, delta)
    return numpy.einsum("mn,mk->mnk", delta, a)


def cell_contributions(view: InnerProductView, row: int, col: int) -> numpy.ndarray:
    """(M_,) float64: sample m's term of dW[row, col] (δₘᵢ·aₘⱼ, or aₘᵢ·δₘⱼ when transposed);
    their sum is the cell."""
    delta = numpy.asarray(view.delta, numpy.float64)
    a = numpy.asarray(view.a, numpy.float64)
    if view.transpose:
        return a[:, row] * delta[:, col]
    return delta[:, row] * a[:, col]


def weights_used(view: InnerProductView) -> numpy.ndarray:
    """float64 W as the backward read it: after a whole iteration the view's W is already
    updated, so the update is added back (W_before = W + ΔW, exact to float32 rounding)."""
    weight = numpy.asarray(view.W, numpy.float64)
    if view.update_W is not None:
        weight = weight + numpy.asarray(view.update_W, numpy.float64)
    return weight


def sample_share(view: InnerProductView, m: int) -> SampleShare:
    """Sample ``m``'s share of ``view``'s dW, db and δ_down."""
    if view.a is None or view.delta is None or view.pending_backward:
        raise ValueError(f"layer {view.layer}: no backward yet, so no per-sample shares")
    count = batch_size(view)
    if not 0 <= m < count:
        raise IndexError(f"sample {m} is outside the batch of {count}")
    delta_row = numpy.asarray(view.delta[m], numpy.float64)
    a_row = numpy.asarray(view.a[m], numpy.float64)
    outer = numpy.outer(a_row, delta_row) if view.transpose else numpy.outer(delta_row, a_row)
    down = check = None
    if view.delta_down is not None:
        down = numpy.asarray(view.delta_down[m])
        weight = weights_used(view)
        check = weight @ delta_row if view.transpose else delta_row @ weight
    return SampleShare(layer=view.layer, m=m, batch_size=count, delta_row=delta_row, a_row=a_row,
                       outer=outer, db_share=None if view.db is None else delta_row.copy(),
                       delta_down_row=down, delta_down_check=check, transpose=view.transpose)


def cell_text(view: InnerProductView, row: int, col: int, top: int = 3) -> str:
    """One line on a dW cell: its value, the sum of the samples' terms, who drives and who pulls against."""
    terms = cell_contributions(view, row, col)
    total = float(terms.sum())
    order = numpy.argsort(-terms * numpy.sign(total or 1.0))
    drivers = ", ".join(f"#{int(k)}" for k in order[:top] if terms[k] * total > 0)
    against = ", ".join(f"#{int(k)}" for k in order[::-1][:top] if terms[k] * total < 0)
    engine_value = float(view.dW[row, col]) if view.dW is not None else float("nan")
    return (f"dW[{row},{col}] = {engine_value:.6g} = Σ of {terms.size} samples' terms ({total:.6g}); "
            f"drive: {drivers or '—'}; pull against: {against or '—'}")


@dataclass
class BatchOutcome:
    """The loss layer's view of the current batch (from the last forward's blobs)."""

    scores: numpy.ndarray        # (M, C) float64
    labels: numpy.ndarray        # (M,) int
    losses: numpy.ndarray        # (M,) float64: −log softmax(scores)[label]
    predictions: numpy.ndarray   # (M,) int
    confusion: numpy.ndarray     # (C, C) int: row = true class, column = predicted
    loss_layer: str = ""

    @property
    def accuracy(self) -> float:
        return float((self.predictions == self.labels).mean()) if self.labels.size else float("nan")


def confusion_matrix(labels: numpy.ndarray, predictions: numpy.ndarray, classes: int) -> numpy.ndarray:
    """(classes, classes) counts: row = true class, column = predicted class."""
    matrix = numpy.zeros((classes, classes), dtype=numpy.int64)
    numpy.add.at(matrix, (labels.astype(int), predictions.astype(int)), 1)
    return matrix


def per_sample_softmax_loss(scores: numpy.ndarray, labels: numpy.ndarray) -> numpy.ndarray:
    """−log softmax(scores)[label] per row, float64 (log-sum-exp, shifted by the row max)."""
    scores = numpy.asarray(scores, numpy.float64)
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_norm = numpy.log(numpy.exp(shifted).sum(axis=1))
    return log_norm - shifted[numpy.arange(scores.shape[0]), labels]


def batch_outcome(net) -> BatchOutcome | None:
    """Per-sample loss, predictions and confusion matrix of the net's current batch, read
    from the bottoms of its first SoftmaxWithLoss layer; None when the net has none."""
    for i, layer in enumerate(net.layers):
        if layer.type_name not in CLASSIFIER_LOSSES or len(net.bottom_names[i]) < 2:
            continue
        score_blob, label_blob = net.bottoms_of(i)[:2]
        scores = to_numpy(score_blob.data).reshape(score_blob.shape[0], -1).astype(numpy.float64)
        labels = to_numpy(label_blob.data).reshape(-1).astype(int)
        losses = per_sample_softmax_loss(scores, labels)
        predictions = scores.argmax(axis=1)
        classes = max(scores.shape[1], int(labels.max()) + 1 if labels.size else 0)
        return BatchOutcome(scores, labels, losses, predictions,
                            confusion_matrix(labels, predictions, classes), layer.name)
    return None


@dataclass
class PathStep:
    """Sample m's δ at one blob: the row of the blob's diff (what arrived from above)."""

    blob: str
    layers: list[str]
    row: numpy.ndarray
    norm: float = field(default=0.0)


def sample_path(net, m: int) -> list[PathStep]:
    """Sample ``m``'s δ row at every blob with a batch axis, from the loss down to the input.

    Reads each blob's diff as the last backward left it (for an in-place chain such as
    ip1 → relu1, the blob holds the δ below the last in-place layer). Blobs whose first
    axis is not the batch, and the loss outputs, are left out."""
    steps: list[PathStep] = []
    batch = None
    seen: set[str] = set()
    for i in reversed(range(len(net.layers))):
        for j, name in enumerate(net.bottom_names[i]):
            blob = net.blobs[name]
            if name in seen or not blob.shape or not net.bottom_need_backward[i][j]:
                continue
            if batch is None:
                batch = blob.shape[0]
            if blob.shape[0] != batch or not 0 <= m < batch:
                continue
            seen.add(name)
            row = to_numpy(blob.diff).reshape(batch, -1)[m].astype(numpy.float64)
            users = [net.layers[k].name for k in range(len(net.layers)) if name in net.top_names[k]]
            steps.append(PathStep(name, users, row, float(numpy.linalg.norm(row))))
    return steps
