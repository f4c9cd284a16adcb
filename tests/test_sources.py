import numpy as np
import pytest
from PIL import Image

from shipcam.errors import DatasetError, ImageError
from shipcam.runtime.image import read_image
from shipcam.train.data.rle import rle_decode
from shipcam.train.data.sources import AIRBUS_CSV, AIRBUS_IMAGES, Layout, load_dataset
from shipcam.train.data.synthetic import SceneConfig, generate_scene


def test_airbus_layout_round_trips_labels_and_masks(synthetic_dir):
    samples = load_dataset(synthetic_dir, show_progress=False)
    assert samples.layout is Layout.AIRBUS and len(samples) == 48
    cfg = SceneConfig(size=64, ship_fraction=0.5)
    for path, label, rles in zip(samples.paths, samples.labels, samples.rles):
        index = int(path.stem.split("_")[-1])
        scene = generate_scene(cfg, seed=3, index=index)
        assert label == scene.has_ship
        decoded = [rle_decode(r, (64, 64)) for r in rles]
        assert len(decoded) == len(scene.masks)
        assert all(np.array_equal(a, b) for a, b in zip(decoded, scene.masks))


def test_corrupt_jpeg_is_skipped_with_a_warning_naming_it(synthetic_dir, tmp_path):
    import shutil

    root = tmp_path / "airbus"
    shutil.copytree(synthetic_dir, root)
    victim = sorted((root / AIRBUS_IMAGES).iterdir())[5]
    victim.write_bytes(victim.read_bytes()[:200])  # truncated JPEG
    (root / AIRBUS_IMAGES / "garbage.jpg").write_bytes(b"not an image at all")
    with open(root / AIRBUS_CSV, "a") as f:
        f.write("garbage.jpg,\n")
    with pytest.warns(UserWarning) as record:
        samples = load_dataset(root, show_progress=False)
    text = " ".join(str(w.message) for w in record)
    assert victim.name in text and "garbage.jpg" in text and "skipped 2 of 49" in text
    assert len(samples) == 47 and victim not in samples.paths


def test_empty_folder_is_a_clear_error(tmp_path):
    (tmp_path / "ship").mkdir()
    (tmp_path / "no_ship").mkdir()
    with pytest.raises(DatasetError, match="no images found"):
        load_dataset(tmp_path)
    with pytest.raises(DatasetError, match="cannot tell the dataset layout"):
        load_dataset(tmp_path / "ship")
    with pytest.raises(DatasetError, match="not a folder"):
        load_dataset(tmp_path / "missing")


def _save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_folder_and_shipsnet_layouts(tmp_path, rng):
    img = rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)
    for i in range(3):
        _save(tmp_path / "f" / "ship" / f"a{i}.png", img)
        _save(tmp_path / "s" / f"1__scene_{i}.png", img)
    for i in range(2):
        _save(tmp_path / "f" / "no_ship" / f"b{i}.jpg", img)
        _save(tmp_path / "s" / f"0__scene_{i}.png", img)
    _save(tmp_path / "s" / "readme.png", img)  # not ShipsNet-named: ignored
    f = load_dataset(tmp_path / "f", show_progress=False)
    s = load_dataset(tmp_path / "s", show_progress=False)
    assert f.layout is Layout.FOLDERS and sorted(f.labels.tolist()) == [0, 0, 1, 1, 1]
    assert s.layout is Layout.SHIPSNET and sorted(s.labels.tolist()) == [0, 0, 1, 1, 1]


def test_stratified_split_keeps_class_shares(synthetic_dir):
    samples = load_dataset(synthetic_dir, show_progress=False)
    train, val = samples.split(0.25, seed=1)
    assert len(train) + len(val) == len(samples)
    assert not set(train.paths) & set(val.paths)
    assert abs(val.ship_fraction - samples.ship_fraction) < 0.1


def test_read_image_policies(tmp_path, rng):
    rgb = rng.integers(0, 255, (10, 12, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    assert np.array_equal(read_image(tmp_path / "rgb.png"), rgb)

    Image.fromarray(rgb[..., 0]).save(tmp_path / "gray.png")
    g = read_image(tmp_path / "gray.png")
    assert g.shape == (10, 12, 3) and np.array_equal(g[..., 2], rgb[..., 0])

    rgba = np.dstack([rgb, np.full((10, 12), 128, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    with pytest.warns(UserWarning, match="alpha channel dropped"):
        assert np.array_equal(read_image(tmp_path / "rgba.png"), rgb)

    twelve_bit = (np.arange(120, dtype=np.uint16).reshape(10, 12) * 34).astype(np.uint16)  # max 4046 < 4095
    Image.fromarray(twelve_bit).save(tmp_path / "deep.png")
    with pytest.warns(UserWarning, match="0..4095"):
        d = read_image(tmp_path / "deep.png")
    np.testing.assert_allclose(d[..., 0], np.round(twelve_bit.astype(float) * 255 / 4095), atol=1)


def test_read_image_errors_name_the_file(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.raises(ImageError, match="broken.jpg"):
        read_image(bad)
    with pytest.raises(ImageError, match="no such file"):
        read_image(tmp_path / "nope.png")
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / "big.png")
    with pytest.raises(ImageError, match="decompression-bomb"):
        read_image(tmp_path / "big.png", max_pixels=1000)


def test_a_small_per_call_limit_never_lowers_pillows_global(tmp_path, monkeypatch):
    """Threads share Pillow's MAX_IMAGE_PIXELS: a call with a tight limit must not lower it for the others."""
    from PIL import Image

    from shipcam.errors import ImageError
    from shipcam.runtime.image import read_image

    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / "img.png")
    seen, real_open = [], Image.open

    def spy(*a, **k):
        seen.append(Image.MAX_IMAGE_PIXELS)
        return real_open(*a, **k)

    before = Image.MAX_IMAGE_PIXELS
    monkeypatch.setattr(Image, "open", spy)
    with pytest.raises(ImageError, match="decompression-bomb"):
        read_image(tmp_path / "img.png", max_pixels=1000)
    assert (
        seen
        and min(seen) >= (before or 0)
        and (Image.MAX_IMAGE_PIXELS is None or Image.MAX_IMAGE_PIXELS >= (before or 0))
    )
