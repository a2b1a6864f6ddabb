"""engine.pycaffe used the way BVLC's tutorial notebooks use pycaffe:
01-learning-lenet (NetSpec over an LMDB, SGDSolver, step, forward(start=...)),
net_surgery (writing params, .flat, save and reload), 00-classification
(Transformer, Classifier). Expected numbers come from plain numpy arithmetic."""
import numpy as np
import pytest

import engine.pycaffe as caffe
from engine.pycaffe import layers as L
from engine.pycaffe import params as P

BATCH = 16


def write_two_class_lmdb(path, count, seed):
    """``count`` 1x28x28 uint8 digits: class 0 bright on the left, class 1 on the right."""
    import lmdb

    gen = np.random.default_rng(seed)
    images = gen.integers(0, 60, size=(count, 1, 28, 28), dtype=np.uint8)
    labels = np.arange(count) % 2
    for image, label in zip(images, labels):
        image[0, 6:22, (4 if label == 0 else 16):(12 if label == 0 else 24)] += 180
    env = lmdb.open(str(path), map_size=1 << 26)
    with env.begin(write=True) as txn:
        for i, (image, label) in enumerate(zip(images, labels)):
            txn.put(f"{i:08d}".encode(), caffe.io.array_to_datum(image, int(label)).SerializeToString())
    env.close()
    return images, labels


def lenet(lmdb_path, batch_size):
    n = caffe.NetSpec()
    n.data, n.label = L.Data(batch_size=batch_size, backend=P.Data.LMDB, source=lmdb_path,
                             transform_param=dict(scale=1. / 255), ntop=2)
    n.conv1 = L.Convolution(n.data, kernel_size=5, num_output=4, weight_filler=dict(type='xavier'))
    n.pool1 = L.Pooling(n.conv1, kernel_size=2, stride=2, pool=P.Pooling.MAX)
    n.fc1 = L.InnerProduct(n.pool1, num_output=16, weight_filler=dict(type='xavier'))
    n.relu1 = L.ReLU(n.fc1, in_place=True)
    n.score = L.InnerProduct(n.relu1, num_output=2, weight_filler=dict(type='xavier'))
    n.loss = L.SoftmaxWithLoss(n.score, n.label)
    return n.to_proto()


@pytest.fixture
def lenet_solver(tmp_path, monkeypatch):
    """The 01-learning-lenet files, paths relative to the working directory as there."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mnist").mkdir()
    images, labels = write_two_class_lmdb(tmp_path / "mnist" / "train_lmdb", 64, seed=1)
    write_two_class_lmdb(tmp_path / "mnist" / "test_lmdb", 32, seed=2)
    with open("mnist/lenet_auto_train.prototxt", "w") as f:
        f.write(str(lenet("mnist/train_lmdb", BATCH)))
    with open("mnist/lenet_auto_test.prototxt", "w") as f:
        f.write(str(lenet("mnist/test_lmdb", BATCH)))
    with open("mnist/lenet_auto_solver.prototxt", "w") as f:
        f.write('train_net: "mnist/lenet_auto_train.prototxt"\n'
                'test_net: "mnist/lenet_auto_test.prototxt"\n'
                'test_iter: 2 test_interval: 500 base_lr: 0.05 momentum: 0.9 weight_decay: 0.0005\n'
                'lr_policy: "inv" gamma: 0.0001 power: 0.75 display: 100 max_iter: 10000\n'
                'snapshot: 5000 snapshot_prefix: "mnist/lenet" random_seed: 3\n')
    caffe.set_mode_cpu()
    return caffe.SGDSolver('mnist/lenet_auto_solver.prototxt'), images, labels


def test_learning_lenet_flow(lenet_solver):
    solver, images, labels = lenet_solver
    shapes = {k: v.data.shape for k, v in solver.net.blobs.items()}
    assert shapes['data'] == (BATCH, 1, 28, 28) and shapes['conv1'] == (BATCH, 4, 24, 24)
    assert shapes['score'] == (BATCH, 2) and shapes['loss'] == ()
    assert {k: v[0].data.shape for k, v in solver.net.params.items()} == {
        'conv1': (4, 1, 5, 5), 'fc1': (16, 576), 'score': (2, 16)}

    solver.net.forward()
    solver.test_nets[0].forward()
    np.testing.assert_allclose(solver.net.blobs['data'].data[:8, 0], images[:8, 0] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(solver.net.blobs['label'].data[:8], labels[:8])

    weights = solver.net.params['conv1'][0].data  # held across steps, as notebooks do
    before = weights.copy()
    solver.step(1)
    update = solver.net.params['conv1'][0].diff
    np.testing.assert_array_equal(weights, before - update)  # diff holds the update (Caffe)
    assert np.abs(update).max() > 0

    test_net = solver.test_nets[0]
    train_loss = np.zeros(40)
    for it in range(40):
        solver.step(1)
        train_loss[it] = solver.net.blobs['loss'].data
        data_before = test_net.blobs['data'].data.copy()
        test_net.forward(start='conv1')  # the data layer does not run: same batch
        np.testing.assert_array_equal(test_net.blobs['data'].data, data_before)
    assert solver.iter == 41
    assert train_loss[-5:].mean() < train_loss[:5].mean()
    correct = 0
    for _ in range(2):
        test_net.forward()
        correct += int((test_net.blobs['score'].data.argmax(1) == test_net.blobs['label'].data).sum())
    assert correct / (2 * BATCH) > 0.9


def deploy_file(tmp_path, name, body):
    path = tmp_path / name
    path.write_text(body)
    return str(path)


FC_NET = """name: 'surgery'
layer { name: 'data' type: 'Input' top: 'data' input_param { shape { dim: 2 dim: 3 dim: 1 dim: 1 } } }
layer { name: 'fc' type: 'InnerProduct' bottom: 'data' top: 'fc' inner_product_param { num_output: 4 } }
layer { name: 'prob' type: 'Softmax' bottom: 'fc' top: 'prob' }
"""
CONV_NET = FC_NET.replace("name: 'fc' type: 'InnerProduct'", "name: 'fc-conv' type: 'Convolution'") \
    .replace("inner_product_param { num_output: 4 }", "convolution_param { num_output: 4 kernel_size: 1 }") \
    .replace("top: 'fc' ", "top: 'fc-conv' ").replace("bottom: 'fc'", "bottom: 'fc-conv'")


def softmax_rows(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_net_surgery_save_and_transplant(tmp_path):
    gen = np.random.default_rng(0)
    W, b = gen.normal(size=(4, 3)), gen.normal(size=4)
    x = gen.normal(size=(2, 3, 1, 1)).astype(np.float32)
    net = caffe.Net(deploy_file(tmp_path, "fc.prototxt", FC_NET), caffe.TEST)
    net.params['fc'][0].data[...] = W
    net.params['fc'][1].data[...] = b
    prob = net.forward(data=x)['prob']
    expected = softmax_rows(x.reshape(2, 3).astype(np.float64) @ W.T + b)
    np.testing.assert_allclose(prob, expected, rtol=1e-5)

    weights = str(tmp_path / "surgery.caffemodel")
    net.save(weights)
    reloaded = caffe.Net(deploy_file(tmp_path, "fc2.prototxt", FC_NET), caffe.TEST, weights=weights)
    np.testing.assert_array_equal(reloaded.params['fc'][0].data, net.params['fc'][0].data)

    conv = caffe.Net(deploy_file(tmp_path, "conv.prototxt", CONV_NET), caffe.TEST)
    conv.params['fc-conv'][0].data.flat = net.params['fc'][0].data.flat  # the notebook's transplant
    conv.params['fc-conv'][1].data[...] = net.params['fc'][1].data
    out = conv.forward(data=x)
    np.testing.assert_allclose(out['prob'].reshape(2, 4), expected, rtol=1e-5)


def test_transformer_preprocess_deprocess_round_trip():
    gen = np.random.default_rng(1)
    image = gen.uniform(size=(5, 6, 3)).astype(np.float32)
    mean = np.array([104.0, 117.0, 123.0])
    t = caffe.io.Transformer({'data': (1, 3, 5, 6)})
    t.set_transpose('data', (2, 0, 1))
    t.set_channel_swap('data', (2, 1, 0))
    t.set_raw_scale('data', 255)
    t.set_mean('data', mean)
    t.set_input_scale('data', 0.5)
    pre = t.preprocess('data', image)
    expected = (image.astype(np.float64).transpose(2, 0, 1)[[2, 1, 0]] * 255 - mean[:, None, None]) * 0.5
    assert pre.shape == (3, 5, 6) and pre.dtype == np.float32
    np.testing.assert_allclose(pre, expected, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(t.deprocess('data', pre), image, atol=1e-5)
    np.testing.assert_array_equal(image, image.copy())  # the input is not changed in place

    t_small = caffe.io.Transformer({'data': (1, 3, 3, 4)})
    assert t_small.preprocess('data', image).shape == (3, 4, 3)  # resized, not transposed
    with pytest.raises(ValueError):
        t.set_mean('data', np.zeros(4))


def test_resize_oversample_and_load_image(tmp_path):
    from PIL import Image

    flat = np.full((4, 4, 2), 0.25, dtype=np.float32)
    np.testing.assert_array_equal(caffe.io.resize_image(flat, (7, 3)), np.full((7, 3, 2), 0.25, np.float32))
    ramp = np.tile(np.arange(4, dtype=np.float32)[None, :, None], (4, 1, 1))
    doubled = caffe.io.resize_image(ramp, (4, 8), interp_order=0)
    np.testing.assert_array_equal(doubled[0, :, 0], np.repeat(np.arange(4), 2))

    image = np.arange(6 * 8 * 3, dtype=np.float32).reshape(6, 8, 3)
    crops = caffe.io.oversample([image], (4, 4))
    assert crops.shape == (10, 4, 4, 3)
    np.testing.assert_array_equal(crops[0], image[0:4, 0:4])
    np.testing.assert_array_equal(crops[3], image[2:6, 4:8])
    np.testing.assert_array_equal(crops[4], image[1:5, 2:6])
    np.testing.assert_array_equal(crops[9], image[1:5, 2:6][:, ::-1])

    rgb = np.random.default_rng(2).integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(rgb[:, :, 0]).save(tmp_path / "grey.png")
    loaded = caffe.io.load_image(str(tmp_path / "rgb.png"))
    assert loaded.dtype == np.float32 and loaded.shape == (5, 7, 3)
    np.testing.assert_allclose(loaded, rgb / 255.0, rtol=1e-6)
    grey = caffe.io.load_image(str(tmp_path / "grey.png"), color=False)
    assert grey.shape == (5, 7, 1)
    np.testing.assert_allclose(grey[:, :, 0], rgb[:, :, 0] / 255.0, rtol=1e-6)
    tiled = caffe.io.load_image(str(tmp_path / "grey.png"))
    assert tiled.shape == (5, 7, 3) and (tiled[:, :, 2] == tiled[:, :, 0]).all()
    luminance = caffe.io.load_image(str(tmp_path / "rgb.png"), color=False)
    np.testing.assert_allclose(luminance[:, :, 0], rgb / 255.0 @ np.array([0.2125, 0.7154, 0.0721]), rtol=1e-5)


CLASSIFY_NET = """name: 'tiny'
layer { name: 'data' type: 'Input' top: 'data' input_param { shape { dim: 3 dim: 3 dim: 4 dim: 4 } } }
layer { name: 'fc' type: 'InnerProduct' bottom: 'data' top: 'fc' inner_product_param { num_output: 5 } }
layer { name: 'prob' type: 'Softmax' bottom: 'fc' top: 'prob' }
"""


def test_classifier_predict(tmp_path):
    gen = np.random.default_rng(3)
    model = deploy_file(tmp_path, "deploy.prototxt", CLASSIFY_NET)
    net = caffe.Net(model, caffe.TEST)
    W = gen.normal(scale=0.01, size=(5, 48))
    net.params['fc'][0].data[...] = W
    weights = str(tmp_path / "tiny.caffemodel")
    net.save(weights)
    mean = np.array([0.1, 0.2, 0.3])
    clf = caffe.Classifier(model, weights, image_dims=(6, 6), mean=mean, raw_scale=255, channel_swap=(2, 1, 0))
    images = [gen.uniform(size=(6, 6, 3)).astype(np.float32) for _ in range(2)]

    def expected_scores(crop):
        caffe_in = crop.astype(np.float64).transpose(2, 0, 1)[[2, 1, 0]] * 255 - mean[:, None, None]
        return softmax_rows((W @ caffe_in.reshape(-1))[None, :])[0]

    centre = clf.predict(images, oversample=False)
    np.testing.assert_allclose(centre, [expected_scores(im[1:5, 1:5]) for im in images], rtol=1e-4)
    ten = clf.predict(images)
    corners = [(0, 0), (0, 2), (2, 0), (2, 2), (1, 1)]
    for im, scores in zip(images, ten):
        crops = [im[r:r + 4, c:c + 4] for r, c in corners]
        crops += [crop[:, ::-1] for crop in crops]
        np.testing.assert_allclose(scores, np.mean([expected_scores(c) for c in crops], axis=0), rtol=1e-4)


LEGACY_INPUT_NET = """name: 'conv'
input: 'data' input_shape { dim: 1 dim: 1 dim: 6 dim: 6 }
layer { name: 'conv' type: 'Convolution' bottom: 'data' top: 'conv'
  convolution_param { num_output: 2 kernel_size: 3 weight_filler { type: 'gaussian' std: 1 } } }
"""


@pytest.mark.filterwarnings("ignore:Upgraded input file")
def test_reshape_input_then_forward_without_net_reshape(tmp_path):
    """net_surgery / 00-classification: ``blobs['data'].reshape(...)``, write the data,
    ``forward()``; Caffe reshapes every layer as it runs forward."""
    net = caffe.Net(deploy_file(tmp_path, "conv.prototxt", LEGACY_INPUT_NET), caffe.TEST)
    assert net.inputs == ['data'] and list(net.params) == ['conv']
    image = np.random.default_rng(4).uniform(size=(9, 7, 1)).astype(np.float32).squeeze()
    im_input = image[np.newaxis, np.newaxis, :, :]
    net.blobs['data'].reshape(*im_input.shape)
    net.blobs['data'].data[...] = im_input
    net.params['conv'][1].data[...] = 1.0
    conv = net.forward()['conv']
    assert conv.shape == (1, 2, 7, 5)
    W = net.params['conv'][0].data.astype(np.float64)
    expected = np.empty((2, 7, 5))
    for k in range(2):
        for r in range(7):
            for c in range(5):
                expected[k, r, c] = (W[k, 0] * image[r:r + 3, c:c + 3]).sum() + 1.0
    np.testing.assert_allclose(conv[0], expected, rtol=1e-5, atol=1e-5)


def test_detector_scores_windows(tmp_path):
    from PIL import Image

    gen = np.random.default_rng(5)
    model = deploy_file(tmp_path, "deploy.prototxt", CLASSIFY_NET)
    net = caffe.Net(model, caffe.TEST)
    W = gen.normal(scale=0.01, size=(5, 48))
    net.params['fc'][0].data[...] = W
    weights = str(tmp_path / "tiny.caffemodel")
    net.save(weights)
    pixels = gen.integers(0, 256, size=(9, 11, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "scene.png")
    det = caffe.Detector(model, weights, raw_scale=255, channel_swap=(2, 1, 0))
    windows = [(0, 0, 4, 4), (3, 5, 7, 9)]
    found = det.detect_windows([(str(tmp_path / "scene.png"), windows)])
    assert [d['window'] for d in found] == windows
    for d, (y0, x0, y1, x1) in zip(found, windows):
        crop = pixels[y0:y1, x0:x1].astype(np.float64) / 255.0
        caffe_in = crop.transpose(2, 0, 1)[[2, 1, 0]] * 255
        np.testing.assert_allclose(d['prediction'], softmax_rows((W @ caffe_in.reshape(-1))[None, :])[0], rtol=1e-4)
    padded = caffe.Detector(model, weights, raw_scale=255, mean=np.array([10.0, 20.0, 30.0]), context_pad=1)
    assert padded.crop(pixels / 255.0, (0, 0, 4, 4)).shape == (4, 4, 3)
    assert padded.detect_windows([(str(tmp_path / "scene.png"), [(2, 2, 6, 6)])])[0]['prediction'].shape == (5,)
