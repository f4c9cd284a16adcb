"""Synthetic satellite scenes with ships and their masks: shipcam's embedded dataset.

Modelled on PlanetScope imagery at ~3 m/px (dark green-blue sea with a faint
wave texture and sun glint; anchored cargo ships and tankers 40-300 m long with
rust-red, white or dark hulls and a bright superstructure; small boats with
long white wakes; piers, breakwaters, platforms and clouds) and scaled by the
ground-sample distance, so a 200 m tanker is ~67 px at 3 m/px and ~133 px at
1.5 m/px (Airbus/SPOT).

Hard negatives matter more than easy positives: no-ship scenes carry the
things a detector confuses with ships (wakes whose boat left the frame,
breakwaters, piers, platforms, buoys, cloud puffs, glint).

Everything is numpy; a scene is a pure function of ``(seed, index, config)`` so
datasets are reproducible and can be generated in any order.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from shipcam.runtime.resize import resize_bilinear

__all__ = ["SceneConfig", "Scene", "generate_scene", "generate_scenes"]

# Sea colours (RGB) measured on open water in the two PlanetScope reference
# scenes (SF Bay, San Pedro Bay) plus a deep-ocean blue as seen in Airbus tiles.
_SEA_COLOURS = np.array([[78, 91, 74], [50, 62, 56], [40, 58, 66], [28, 45, 62], [62, 80, 82]], np.float32)
_HULL_COLOURS = np.array(
    [[170, 88, 66], [150, 70, 55], [188, 196, 186], [205, 208, 200], [70, 72, 74], [95, 110, 125], [120, 60, 50]],
    np.float32,
)
_CONTAINER_COLOURS = np.array(
    [[190, 60, 50], [60, 100, 170], [200, 170, 60], [80, 140, 90], [220, 220, 215]], np.float32
)


@dataclass(frozen=True)
class SceneConfig:
    """What a synthetic scene may contain. Lengths in metres, sizes in pixels."""

    size: int = 96
    gsd: float = 3.0  # metres per pixel: PlanetScope ~3, Airbus SPOT ~1.5
    gsd_range: tuple[float, float] | None = (
        None  # each scene drawn at its own GSD from this range (log-uniform) instead of ``gsd``
    )
    ship_fraction: float = 0.22  # Airbus: 22% of images have ships
    max_ships: int = 3
    ship_length_m: tuple[float, float] = (20.0, 350.0)  # sampled log-uniformly
    beam_ratio: tuple[float, float] = (0.11, 0.2)
    moving_fraction: float = 0.45  # ships that trail a wake
    cloud_prob: float = 0.2
    coast_prob: float = 0.45  # real scenes are full of quays, cities and ports: the confusers live there
    confuser_prob: float = 0.6  # chance of each hard-negative kind being tried
    noise_std: float = 2.0
    land_max: float = 0.85  # the largest share of a coastal scene that may be land (city, port)
    moored_prob: float = 0.35  # in a coastal scene, chance that a ship lies along the quay
    haze_prob: float = 0.3
    # Open sea as 1.5 m imagery shows it (each a chance per scene; ship-free scenes get them too):
    swell_prob: float = 0.5  # long swell, 60-250 m crests
    whitecap_prob: float = 0.25  # breaking crests: white flecks strung along the wind, 50-1500 per km2
    glint_prob: float = 0.2  # a sun-glint zone: brighter water whose wave facets sparkle
    shallow_prob: float = 0.12  # turquoise shallows over sand, with sandbars awash
    thin_cloud_prob: float = 0.15  # a veil of thin cloud the sea shows through

    @classmethod
    def open_sea(cls, size: int = 768, gsd: float = 1.5, **overrides) -> "SceneConfig":
        """Airbus-like scenes: mostly open water in every sea state, few coasts, ships of 20-350 m."""
        base = dict(
            size=size,
            gsd=gsd,
            coast_prob=0.15,
            swell_prob=0.8,
            whitecap_prob=0.5,
            glint_prob=0.35,
            shallow_prob=0.25,
            thin_cloud_prob=0.3,
            cloud_prob=0.25,
            max_ships=4,
        )
        return cls(**{**base, **overrides})

    def __post_init__(self) -> None:
        if self.size < 16:
            raise ValueError(f"scene size must be >= 16 px, received size={self.size}")
        if self.gsd <= 0:
            raise ValueError(f"gsd must be positive metres/pixel, received gsd={self.gsd}")
        if not 0.0 <= self.ship_fraction <= 1.0:
            raise ValueError(f"ship_fraction must be in [0, 1], received {self.ship_fraction}")
        lo, hi = self.ship_length_m
        if not 0 < lo <= hi:
            raise ValueError(f"ship_length_m must be (min, max) with 0 < min <= max, received {self.ship_length_m}")
        if self.gsd_range is not None and not 0 < self.gsd_range[0] <= self.gsd_range[1]:
            raise ValueError(f"gsd_range must be (min, max) with 0 < min <= max, received {self.gsd_range}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class Scene:
    image: np.ndarray  # (H, W, 3) uint8
    masks: list[np.ndarray] = field(default_factory=list)  # one (H, W) bool per ship
    gsd: float = 3.0  # metres/pixel it was drawn at

    @property
    def has_ship(self) -> bool:
        return len(self.masks) > 0

    @property
    def mask(self) -> np.ndarray:
        union = np.zeros(self.image.shape[:2], bool)
        for m in self.masks:
            union |= m
        return union


def generate_scenes(n: int, config: SceneConfig = SceneConfig(), seed: int = 0) -> Iterator[Scene]:
    for i in range(n):
        yield generate_scene(config, seed=seed, index=i)


def generate_scene(config: SceneConfig = SceneConfig(), seed: int = 0, index: int = 0) -> Scene:
    """One scene, determined by ``(seed, index, config)`` alone."""
    if config.gsd_range is not None:  # its own stream: the scene's other draws stay those of a fixed GSD
        lo, hi = config.gsd_range
        g = math.exp(np.random.default_rng([seed, index, 1]).uniform(math.log(lo), math.log(hi)))
        config = dataclasses.replace(config, gsd=float(g), gsd_range=None)
    rng = np.random.default_rng([seed, index])
    s = config.size
    want_ships = rng.random() < config.ship_fraction

    img = _sea(rng, s)
    sea_rng = np.random.default_rng([seed, index, 2])  # the open-sea layers draw from their own stream
    bars = _open_sea(sea_rng, img, config)
    coast = _coast(rng, img, config) if rng.random() < config.coast_prob else None
    land = (coast[0] if coast is not None else np.zeros((s, s), bool)) | bars
    cloud = _cloud_alpha(rng, s) if rng.random() < config.cloud_prob else np.zeros((s, s), np.float32)
    if sea_rng.random() < config.thin_cloud_prob:  # ships lie under a veil like this, unlike under a cloud
        veil = _cloud_alpha(sea_rng, s) * np.float32(sea_rng.uniform(0.2, 0.5))
        cloud = np.maximum(cloud, veil) if cloud.any() else veil

    # Hard negatives first, so ships are drawn over the water around them; a hull never lies across a
    # breakwater, a platform or an island.
    land = land | _confusers(rng, img, land, config)

    masks: list[np.ndarray] = []
    if want_ships:
        n_ships = 1 + int(rng.integers(0, config.max_ships))
        for _ in range(n_ships * 4):  # rejection-sample open water
            if len(masks) == n_ships:
                break
            moored = _berth(rng, coast) if coast is not None and rng.random() < config.moored_prob else None
            mask = _try_ship(rng, img, land, cloud, masks, config, moored)
            if mask is not None:
                masks.append(mask)

    _apply_cloud(rng, img, cloud)
    if rng.random() < config.haze_prob:  # thin haze: contrast pulled towards a bright veil
        veil = rng.uniform(0.05, 0.3)
        img = img * (1 - veil) + np.float32(rng.uniform(170, 215)) * veil
    img = _blur(img, sigma=float(rng.uniform(0.4, 1.2)))
    noise = config.noise_std * rng.uniform(0.5, 2.0)
    img += rng.normal(0.0, noise, img.shape).astype(np.float32)
    return Scene(np.clip(img, 0, 255).astype(np.uint8), masks, config.gsd)


# --- background ---------------------------------------------------------------


def _fractal(
    rng: np.random.Generator, s: int, octaves: int = 4, base: int = 2, persistence: float = 0.55
) -> np.ndarray:
    """Value noise: bilinear-upsampled random grids, finer grids weaker. Roughly N(0, 1)."""
    out = np.zeros((s, s), np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        g = base * 2**o + 1
        out += amp * resize_bilinear(rng.standard_normal((g, g)).astype(np.float32), s, s)
        total += amp**2
        amp *= persistence
    return out / math.sqrt(total)


def _sea(rng: np.random.Generator, s: int) -> np.ndarray:
    a, b = _SEA_COLOURS[rng.choice(len(_SEA_COLOURS), 2, replace=False)]
    colour = a + rng.random() * (b - a) + rng.normal(0, 4, 3)
    img = np.broadcast_to(colour, (s, s, 3)).astype(np.float32).copy()
    img += (rng.uniform(2, 7) * _fractal(rng, s))[..., None]  # slow tone changes

    # Wind waves: a few short directional sinusoids, modulated so they come in patches.
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    waves = np.zeros((s, s), np.float32)
    theta0 = rng.uniform(0, np.pi)
    for _ in range(3):
        th = theta0 + rng.normal(0, 0.3)
        k = 2 * np.pi / rng.uniform(2.5, 7.0)
        waves += np.sin(k * (xx * np.cos(th) + yy * np.sin(th)) + rng.uniform(0, 2 * np.pi))
    patch = np.clip(_fractal(rng, s, octaves=3) + 0.5, 0, None)
    img += (rng.uniform(0.5, 2.5) * waves * patch / 3)[..., None]

    # Sun glint: sparse bright specks, more on some scenes than others.
    glint = rng.random((s, s)) < rng.uniform(0, 0.004)
    img[glint] += rng.uniform(20, 60)
    return img


def _open_sea(rng: np.random.Generator, img: np.ndarray, cfg: SceneConfig) -> np.ndarray:
    """Swell, whitecaps, a sun-glint zone and turquoise shallows, in metres at the scene's GSD; returns the sandbars (no
    ship goes there).
    """
    s = img.shape[0]
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    wind = rng.uniform(0, 2 * np.pi)
    bars = np.zeros((s, s), bool)
    if rng.random() < cfg.shallow_prob:
        bars = _shallows(rng, img, xx, yy, cfg.gsd)
    if rng.random() < cfg.swell_prob:  # two long trains a little apart in direction and length
        swell = np.zeros((s, s), np.float32)
        th, lam = wind + rng.normal(0, 0.4), rng.uniform(60, 250) / cfg.gsd
        warp = 0.6 * _fractal(rng, s, octaves=3)
        for k, (dth, dlam) in enumerate(((0.0, 1.0), (rng.normal(0, 0.3), rng.uniform(0.6, 0.9)))):
            phase = 2 * np.pi / (lam * dlam) * (xx * np.cos(th + dth) + yy * np.sin(th + dth))
            swell += np.sin(phase + warp + rng.uniform(0, 2 * np.pi)) / (1 + k)
        img += (rng.uniform(1.5, 6.0) * swell)[..., None] * np.array([0.8, 0.9, 1.0], np.float32)
    if rng.random() < cfg.glint_prob:
        cx, cy = rng.uniform(-0.5, 1.5, 2) * s
        r = rng.uniform(0.3, 1.2) * s
        zone = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
        sparkle = np.clip(_fractal(rng, s, octaves=6, base=8, persistence=0.8), 0, None)
        img += (zone * rng.uniform(15, 70) * (0.6 + 0.8 * sparkle))[..., None]
    if rng.random() < cfg.whitecap_prob:
        _whitecaps(rng, img, wind, cfg.gsd)
    return bars


def _shallows(rng, img, xx, yy, gsd: float) -> np.ndarray:
    """Shallow water over sand: turquoise where the bottom rises, sandbars where it breaks the surface. Returns the
    bars.
    """
    s = img.shape[0]
    th = rng.uniform(0, 2 * np.pi)
    # Depth falls towards one side, with banks and channels: ~ N(0, 1) plus a ramp across the scene.
    rise = ((xx - s / 2) * np.cos(th) + (yy - s / 2) * np.sin(th)) / s * rng.uniform(1.0, 3.0) + _fractal(
        rng, s, octaves=5, base=2
    )
    shallow = np.clip((rise - rng.uniform(-0.8, 0.6)) / rng.uniform(0.5, 1.2), 0, 1)[..., None]
    turquoise = np.array(
        rng.choice([[70, 160, 165], [95, 178, 172], [55, 132, 142], [125, 192, 182]]), np.float32
    ) * rng.uniform(0.85, 1.1)
    texture = (4 * _fractal(rng, s, octaves=5, base=6))[..., None]
    img[:] = img * (1 - 0.85 * shallow) + (turquoise + texture) * (0.85 * shallow)
    bars = np.zeros((s, s), bool)
    for _ in range(int(rng.integers(0, 3))):  # long, thin, curved: drawn along a wavy line
        bx, by = rng.uniform(0.2, 0.8, 2) * s
        u, v = _along_across(xx, yy, bx, by, th + np.pi / 2 + rng.normal(0, 0.3))
        for _ in range(2):  # a smoothly winding bar
            v = v + rng.uniform(0.02, 0.06) * s * np.sin(u / (rng.uniform(0.1, 0.3) * s) + rng.uniform(0, 2 * np.pi))
        half = rng.uniform(6, 30) / gsd * np.clip(1 - (u / (rng.uniform(0.15, 0.5) * s)) ** 2, 0, 1)
        cover = np.clip(half - np.abs(v) + 0.5, 0, 1)
        sand = (
            np.array([212, 200, 165], np.float32) * rng.uniform(0.9, 1.05)
            + (6 * _fractal(rng, s, octaves=4, base=8))[..., None]
        )
        _paint(img, cover, sand)
        foam = np.clip(1.5 - np.abs(np.abs(v) - half - 1.0), 0, 1) * (half > 0) * rng.uniform(0.2, 0.5)
        img[:] = img * (1 - foam[..., None]) + 235 * foam[..., None]
        bars |= cover > 0.3
    return bars


def _whitecaps(rng, img, wind: float, gsd: float) -> None:
    """Breaking wave crests: white flecks of 2-10 m strung along the wind, thicker where gusts blow."""
    s = img.shape[0]
    km2 = (s * gsd / 1000) ** 2
    n = int(rng.uniform(50, 1500) * km2)
    if n == 0:
        return
    gust = np.clip(_fractal(rng, s, octaves=3) + 0.5, 0, None).ravel()
    where = rng.choice(s * s, n, p=gust / gust.sum()) if gust.sum() > 0 else rng.integers(0, s * s, n)
    fleck = np.zeros(s * s, np.float32)
    np.add.at(fleck, where, (rng.uniform(0.1, 1.0, n) ** 2).astype(np.float32))  # most faint, a few bright
    fleck = fleck.reshape(s, s)
    reach = max(1, int(round(rng.uniform(2, 8) / gsd)))  # along the wind: a crest, not a dot
    dx, dy = np.cos(wind), np.sin(wind)
    lengths = rng.random((s, s)) < 0.5  # half the flecks are dots, half crests
    streak = fleck.copy()
    for i in range(1, reach):
        streak += np.roll(fleck * lengths, (int(round(i * dy)), int(round(i * dx))), axis=(0, 1)) * (
            1 - i / (reach + 1)
        )
    alpha = np.clip(_blur(streak[..., None], sigma=max(0.5, 0.8 / gsd))[..., 0] * rng.uniform(1.0, 2.0), 0, 0.8)
    img[:] = img * (1 - alpha[..., None]) + np.float32(238) * alpha[..., None]


def _coast(
    rng: np.random.Generator, img: np.ndarray, cfg: SceneConfig
) -> tuple[np.ndarray, tuple[float, float, float, float], list[tuple[float, ...]]]:
    """Land on one side of a ragged line: city blocks, a container terminal or a beach; piers and marinas off it.

    Returns the land mask, the shore's geometry (unit normal towards the sea,
    offset, the shore angle) for ships moored along it, and the port's finger
    piers (base x, y, direction angle, length, width) for ships berthed beside them.
    """
    s = img.shape[0]
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    th = rng.uniform(0, 2 * np.pi)
    nx, ny = np.cos(th), np.sin(th)
    offset = rng.uniform(0.1, cfg.land_max) * s
    dist = (xx - s / 2) * nx + (yy - s / 2) * ny + s / 2 - offset  # > 0 is sea
    straight = rng.random() < 0.5  # quays are straight; natural shores are ragged
    dist += (rng.uniform(0, 1) if straight else rng.uniform(1, 5)) * _fractal(rng, s, octaves=3)
    land = dist < 0

    kind = rng.choice(["city", "city", "terminal", "plain"])
    texture = {"city": _city, "terminal": _terminal, "plain": _plain_land}[kind](rng, s, cfg.gsd)
    img[land] = texture[land]
    if kind == "plain" and rng.random() < 0.5:  # beach
        beach = (dist >= -2) & (dist < 0)
        img[beach] = np.array([215, 205, 180], np.float32) + rng.normal(0, 5, (int(beach.sum()), 3))

    # Piers: grey concrete leaving the shore, perpendicular to it.
    for _ in range(int(rng.integers(0, 4))):
        t = rng.uniform(-0.5, 0.5) * s
        cover, _ = _pier(xx, yy, nx, ny, offset, th, t, rng.uniform(8, 35), rng.uniform(1.5, 4))
        _paint(img, cover, np.full(3, rng.uniform(150, 185), np.float32))
        land |= cover > 0.5
    fingers = []
    if kind != "plain" and rng.random() < 0.5:
        fingers = _finger_piers(rng, img, xx, yy, land, nx, ny, offset, th, cfg.gsd)
    if rng.random() < 0.3:  # a marina: rows of small white boats along pontoons (not ships)
        land |= _marina(rng, img, xx, yy, nx, ny, offset, th, cfg.gsd)
    return land, (float(nx), float(ny), float(offset), float(th)), fingers


def _shore_point(s: int, nx: float, ny: float, offset: float, t: float) -> tuple[float, float]:
    """The point of a straight shore (unit normal (nx, ny) towards the sea, ``offset``) at ``t`` along it."""
    return s / 2 - ny * t + nx * (offset - s / 2), s / 2 + nx * t + ny * (offset - s / 2)


def _pier(xx, yy, nx, ny, offset, th, t, length, width, inland: float = 6.0) -> tuple[np.ndarray, tuple[float, float]]:
    """Coverage of a pier leaving the shore at ``t``, perpendicular to it, and its base point on the shore.

    It starts ``inland`` pixels inside the land so none floats free: a detached
    bar would be a boat in all but label.
    """
    cx, cy = _shore_point(xx.shape[0], nx, ny, offset, t)
    mid = (length - inland) / 2
    return _rectangle(xx, yy, cx + nx * mid, cy + ny * mid, th, length + inland, width), (cx, cy)


def _finger_piers(rng, img, xx, yy, land, nx, ny, offset, th, gsd: float) -> list[tuple[float, ...]]:
    """A port's finger piers: ship-sized roofed slabs leaving the shore side by side.

    In real harbours most moored ships lie beside these, and an empty one is as
    long, as bright and as straight as a hull: only the bow, the deck's layout
    and the attachment to land tell them apart.
    """
    s = img.shape[0]
    out = []
    t = rng.uniform(-0.45, 0.0) * s
    tones = np.array([[150, 95, 75], [200, 195, 185], [125, 125, 128], [175, 160, 135], [225, 222, 215]], np.float32)
    for _ in range(int(rng.integers(1, 4))):
        length, width = rng.uniform(120, 450) / gsd, max(3.0, rng.uniform(20, 60) / gsd)
        cover, (cx, cy) = _pier(xx, yy, nx, ny, offset, th, t, length, width)
        roof = tones[rng.integers(len(tones))] * rng.uniform(0.85, 1.1)
        _, v = _along_across(xx, yy, cx, cy, th)
        colour = np.broadcast_to(roof, img.shape).copy()
        colour[v > 0] *= rng.uniform(0.8, 0.95)  # a shed's ridge: one slope in shade
        colour += rng.normal(0, 6, img.shape[:2] + (1,)).astype(np.float32)
        img *= 1 - 0.35 * np.roll(cover, (1, 1), axis=(0, 1))[..., None]
        _paint(img, cover, colour)
        land |= cover > 0.5
        out.append((float(cx), float(cy), float(th), float(length), float(width)))
        t += width + rng.uniform(60, 200) / gsd  # a slip wide enough for ships on both sides
    return out


def _berth(rng, coast) -> tuple[str, tuple[float, ...]]:
    """Where a moored ship goes: along the quay, or beside a finger pier when the port has them."""
    _, shore, fingers = coast
    if fingers and rng.random() < 0.6:
        return "pier", fingers[int(rng.integers(len(fingers)))]
    return "quay", shore


def _city(rng: np.random.Generator, s: int, gsd: float) -> np.ndarray:
    """Dense city blocks: streets, roofs of many tones (bright ones too), shadows, some trees."""
    block = max(3, int(rng.uniform(40, 120) / gsd))
    street = max(1, int(rng.uniform(6, 15) / gsd))
    base = np.array(rng.choice([[150, 145, 130], [175, 170, 160], [120, 125, 110], [160, 150, 135]]), np.float32)
    img = np.broadcast_to(base * rng.uniform(0.85, 1.1), (s, s, 3)).astype(np.float32).copy()
    img += rng.normal(0, 8, (s, s, 1)).astype(np.float32)
    ox, oy = rng.integers(0, block, 2)
    yy, xx = np.mgrid[0:s, 0:s]

    # Buildings: each block split into a few roofs with their own tone.
    roof_tones = np.array(
        [[225, 225, 220], [200, 195, 185], [140, 135, 130], [170, 110, 90], [95, 95, 100], [190, 175, 150]], np.float32
    )
    sub = max(2, block // int(rng.integers(1, 4)))
    ids = ((yy + oy) // sub) * 1009 + ((xx + ox) // sub)
    lut = rng.integers(0, len(roof_tones), 4096)
    jitter = rng.uniform(0.8, 1.15, 4096).astype(np.float32)
    k = ids % 4096
    img = img * 0.4 + (roof_tones[lut[k]] * jitter[k, None]) * 0.6
    # Shadows on one side of each roof cell, streets between blocks, trees.
    shadow = (((yy + oy) % sub) < max(1, sub // 5)) | (((xx + ox) % sub) < max(1, sub // 6))
    img[shadow] *= rng.uniform(0.55, 0.8)
    streets = (((yy + oy) % block) < street) | (((xx + ox) % block) < street)
    img[streets] = np.array([105, 105, 105], np.float32) * rng.uniform(0.8, 1.2) + rng.normal(
        0, 4, (int(streets.sum()), 1)
    )
    if rng.random() < 0.6:
        trees = _fractal(rng, s, octaves=4) > rng.uniform(0.8, 1.6)
        img[trees] = img[trees] * 0.3 + np.array([70, 90, 55], np.float32) * 0.7
    return img


def _terminal(rng: np.random.Generator, s: int, gsd: float) -> np.ndarray:
    """A container terminal: pale pavement with stacks of coloured containers in rows, the look of a deck."""
    img = np.broadcast_to(np.float32(rng.uniform(165, 200)), (s, s, 3)).astype(np.float32).copy()
    img += rng.normal(0, 5, (s, s, 1)).astype(np.float32)
    yy, xx = np.mgrid[0:s, 0:s]
    row = max(2, int(rng.uniform(10, 20) / gsd))
    cont = max(1, int(rng.uniform(6, 13) / gsd))
    lane = max(1, int(rng.uniform(8, 20) / gsd))
    period = row + lane
    if rng.random() < 0.5:
        yy, xx = xx, yy
    stacked = (yy % period) < row
    ids = (yy // period) * 997 + xx // cont
    pal = _CONTAINER_COLOURS[rng.integers(0, len(_CONTAINER_COLOURS), 4096)]
    fill = rng.random(4096) < rng.uniform(0.5, 0.95)
    k = ids % 4096
    on = stacked & fill[k]
    img[on] = pal[k[on]] * rng.uniform(0.8, 1.05)
    return img


def _plain_land(rng: np.random.Generator, s: int, gsd: float) -> np.ndarray:
    block = int(rng.integers(2, 6))
    g = -(-s // block)
    blocks = rng.uniform(0.55, 1.15, (g, g)).repeat(block, 0).repeat(block, 1)[:s, :s]
    tone = np.array(
        rng.choice([[150, 145, 130], [175, 170, 160], [120, 125, 110], [190, 180, 160], [110, 120, 80]]), np.float32
    )
    return tone * blocks[..., None] + rng.normal(0, 6, (s, s, 1))


def _marina(rng, img, xx, yy, nx, ny, offset, th, gsd) -> np.ndarray:
    """Pontoons leaving the shore with small white boats moored on both sides."""
    s = img.shape[0]
    covered = np.zeros((s, s), bool)
    t0 = rng.uniform(-0.4, 0.2) * s
    spacing = max(3.0, rng.uniform(15, 30) / gsd)
    for j in range(int(rng.integers(2, 6))):
        t = t0 + j * spacing
        cx, cy = _shore_point(s, nx, ny, offset, t)
        length = rng.uniform(40, 120) / gsd
        pont = _rectangle(xx, yy, cx + nx * length / 2, cy + ny * length / 2, th, length, 1.0)
        _paint(img, pont, np.full(3, 175, np.float32))
        covered |= pont > 0.5
        boat_len = max(2.0, rng.uniform(8, 18) / gsd)
        for u in np.arange(boat_len, length, max(2.0, boat_len * 0.6)):
            for side in (-1, 1):
                if rng.random() < 0.75:
                    bx = cx + nx * u - ny * side * (boat_len / 2 + 1)
                    by = cy + ny * u + nx * side * (boat_len / 2 + 1)
                    boat = _rectangle(xx, yy, bx, by, th + np.pi / 2, boat_len, max(1.0, boat_len * 0.35))
                    _paint(img, boat, np.full(3, rng.uniform(200, 240), np.float32))
                    covered |= boat > 0.5
    return covered


def _cloud_alpha(rng: np.random.Generator, s: int) -> np.ndarray:
    n = _fractal(rng, s, octaves=5, base=1, persistence=0.6)
    cover = rng.uniform(-0.5, 1.2)  # threshold: from overcast to a few wisps
    return np.clip((n - cover) * rng.uniform(0.6, 1.5), 0, rng.uniform(0.5, 0.95)).astype(np.float32)


def _apply_cloud(rng: np.random.Generator, img: np.ndarray, alpha: np.ndarray) -> None:
    if not alpha.any():
        return
    shadow = np.roll(alpha, (int(rng.integers(2, 6)), int(rng.integers(2, 6))), axis=(0, 1))
    img *= 1 - 0.35 * shadow[..., None]
    img[:] = img * (1 - alpha[..., None]) + np.float32(228) * alpha[..., None]


def _confusers(rng: np.random.Generator, img: np.ndarray, land: np.ndarray, cfg: SceneConfig) -> np.ndarray:
    """Draw the hard negatives; returns the solid ones (breakwater, platform, island) that no ship may cross."""
    s = img.shape[0]
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    p = cfg.confuser_prob
    solid = np.zeros((s, s), bool)
    if rng.random() < p * 0.5:  # wake of a boat that has left the frame, or a ghost wake
        cx, cy = rng.uniform(0, s, 2)
        length = rng.uniform(5, 30) / cfg.gsd
        _wake(rng, img, xx, yy, cx, cy, rng.uniform(0, 2 * np.pi), length, length * 0.15, strength=rng.uniform(0.4, 1))
    if rng.random() < p * 0.5:
        solid |= _breakwater(rng, img, xx, yy, cfg.gsd) > 0.3
    if rng.random() < p * 0.25:  # platform / islet: a squat textured block
        w = rng.uniform(40, 150) / cfg.gsd
        cover = _rectangle(xx, yy, *rng.uniform(0, s, 2), rng.uniform(0, np.pi), w, w * rng.uniform(0.6, 1))
        tex = np.clip(_fractal(rng, s, octaves=3) * 25 + rng.uniform(110, 170), 0, 255)
        _paint(img, cover, np.stack([tex, tex * 0.97, tex * 0.9], -1))
        solid |= cover > 0.3
    if rng.random() < p * 0.15:
        solid |= _island(rng, img, xx, yy, cfg.gsd) > 0.3
    if land.mean() > 0.05 and rng.random() < p:
        _land_decoys(rng, img, xx, yy, land, cfg.gsd)
    if rng.random() < p * 0.4:  # buoys / debris: one or two bright pixels
        for _ in range(int(rng.integers(1, 4))):
            y, x = rng.integers(0, s, 2)
            img[y, x] += rng.uniform(30, 90)
    if rng.random() < p * 0.3:  # small cloud puff
        cx, cy = rng.uniform(0, s, 2)
        r = rng.uniform(2, 8)
        puff = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r)) * rng.uniform(0.4, 0.9)
        img[:] = img * (1 - puff[..., None]) + 225 * puff[..., None]
    return solid


def _breakwater(rng, img, xx, yy, gsd: float) -> np.ndarray:
    """Rubble-mound breakwater: a long bright band of rocks with a foam edge, sometimes in segments.

    Segments the length of a ship are the hard part: only the rock texture,
    the foam and the missing bow and superstructure tell them apart.
    """
    s = img.shape[0]
    th = rng.uniform(0, np.pi)
    cx, cy = rng.uniform(0, s, 2)
    width = max(1.5, rng.uniform(8, 25) / gsd)
    u, v = _along_across(xx, yy, cx, cy, th)
    cover = np.clip(width / 2 - np.abs(v) + 0.5, 0, 1)
    if rng.random() < 0.5:  # gaps for boats to pass: segments 50-300 m long
        period = rng.uniform(60, 320) / gsd
        gap = rng.uniform(8, 40) / gsd
        cover *= np.clip(np.abs(((u / period) % 1.0) * period - period / 2) - gap / 2 + 0.5, 0, 1)
    rocks = np.clip(rng.uniform(140, 200) + 30 * _fractal(rng, s, octaves=4, base=8), 60, 245)
    _paint(img, cover, np.stack([rocks, rocks * 0.98, rocks * 0.93], -1))
    foam = np.clip(1.2 - np.abs(np.abs(v) - width / 2 - 0.8), 0, 1) * (cover.max() > 0) * rng.uniform(0.2, 0.6)
    foam *= np.clip(1 - np.abs(u) / (s * 2), 0, 1) * (v > 0)  # the seaward side
    img[:] = img * (1 - foam[..., None]) + np.float32(220) * foam[..., None]
    return cover


def _island(rng, img, xx, yy, gsd: float) -> np.ndarray:
    """Artificial (oil) island: a rounded rock rim around trees, tanks and bright buildings."""
    s = img.shape[0]
    cx, cy = rng.uniform(0, s, 2)
    r = rng.uniform(50, 150) / gsd
    d = np.hypot((xx - cx) / rng.uniform(0.7, 1.0), yy - cy) + 2.0 * _fractal(rng, s, octaves=3)
    rim, inner = np.clip(r - d + 0.5, 0, 1), np.clip(r - 2.5 - d + 0.5, 0, 1)
    _paint(img, rim, np.full(3, rng.uniform(170, 215), np.float32))
    trees = np.clip(_fractal(rng, s, octaves=4, base=4) * 40 + 80, 40, 130)
    _paint(img, inner, np.stack([trees * 0.8, trees, trees * 0.65], -1))
    for _ in range(int(rng.integers(2, 7))):  # buildings and tanks, some bright, some ship-sized
        bx, by = cx + rng.uniform(-0.6, 0.6) * r, cy + rng.uniform(-0.6, 0.6) * r
        w = rng.uniform(10, 45) / gsd
        block = _rectangle(xx, yy, bx, by, rng.uniform(0, np.pi), w, w * rng.uniform(0.3, 1)) * inner
        _paint(img, block, np.full(3, rng.uniform(150, 240), np.float32))
    return rim


def _land_decoys(rng, img, xx, yy, land: np.ndarray, gsd: float) -> None:
    """Ship-shaped things on land: long bright warehouses, hull-shaped roofs, rail cars.

    The same shapes and paint as the ships, only out of the water, so the
    model has to use the context (water around it) rather than the outline.
    """
    s = img.shape[0]
    for _ in range(int(rng.integers(1, 5))):
        cx, cy = rng.uniform(0, s, 2)
        if not land[int(cy), int(cx)]:
            continue
        length = math.exp(rng.uniform(math.log(30), math.log(250))) / gsd
        beam = max(length * rng.uniform(0.1, 0.3), 1.6)
        heading = rng.uniform(0, 2 * np.pi)
        shape = _hull if rng.random() < 0.4 else _rectangle
        cover = shape(xx, yy, cx, cy, heading, length, beam) * land
        colour = (
            _HULL_COLOURS[rng.integers(len(_HULL_COLOURS))] if rng.random() < 0.5 else np.full(3, rng.uniform(190, 240))
        )
        img *= 1 - 0.35 * np.roll(cover, (1, 1), axis=(0, 1))[..., None]
        _paint(img, cover, np.asarray(colour, np.float32) + rng.normal(0, 8, 3))


# --- ships --------------------------------------------------------------------


def _try_ship(rng, img, land, cloud, others, cfg: SceneConfig, moored=None) -> np.ndarray | None:
    """Draw one ship on open water, or at the berth ``moored`` gives (``_berth``: the quay or beside a finger pier)."""
    s = img.shape[0]
    lo, hi = cfg.ship_length_m
    length = math.exp(rng.uniform(math.log(lo), math.log(hi))) / cfg.gsd
    beam = max(length * rng.uniform(*cfg.beam_ratio), 1.6)
    cx, cy = rng.uniform(2, s - 2, 2)
    heading = rng.uniform(0, 2 * np.pi)
    land_limit = 0.05
    if (
        moored is not None and moored[0] == "quay"
    ):  # slide the centre along the shore normal until the hull touches the quay
        nx, ny, offset, angle = moored[1]
        d = (cx - s / 2) * nx + (cy - s / 2) * ny + s / 2 - offset
        shift = beam / 2 + 1.5 - d
        cx, cy = cx + nx * shift, cy + ny * shift
        heading = angle + np.pi / 2 + (np.pi if rng.random() < 0.5 else 0.0)
        land_limit = 0.2
    elif moored is not None:  # alongside a finger pier, parallel to it, on either side
        px, py, angle, plen, pwidth = moored[1]
        along, side = rng.uniform(0.2, 0.8) * plen, (pwidth / 2 + beam / 2 + 1.0) * (1 if rng.random() < 0.5 else -1)
        cx = px + np.cos(angle) * along - np.sin(angle) * side
        cy = py + np.sin(angle) * along + np.cos(angle) * side
        heading = angle + (np.pi if rng.random() < 0.5 else 0.0)
        land_limit = 0.2
    if moored is not None and not (0 <= cx < s and 0 <= cy < s):  # the berth lies off this side of the frame
        return None

    # Render only inside the ship's bounding box (+ wake room handled separately).
    r = int(length / 2 + beam + 2)
    x0, x1 = max(0, int(cx) - r), min(s, int(cx) + r + 1)
    y0, y1 = max(0, int(cy) - r), min(s, int(cy) + r + 1)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    cover = _hull(xx, yy, cx, cy, heading, length, beam)
    inside = cover > 0.5
    if inside.sum() < 3:
        return None
    if land[y0:y1, x0:x1][inside].mean() > land_limit or cloud[y0:y1, x0:x1][inside].mean() > 0.6:
        return None
    if any(m[y0:y1, x0:x1][inside].any() for m in others):
        return None

    if moored is None and rng.random() < cfg.moving_fraction:
        fy, fx = np.mgrid[0:s, 0:s].astype(np.float32)
        stern_x, stern_y = cx - np.cos(heading) * length / 2, cy - np.sin(heading) * length / 2
        wake_len = length * rng.uniform(1.5, 6)
        _wake(rng, img, fx, fy, stern_x, stern_y, heading + np.pi, wake_len, beam, strength=rng.uniform(0.5, 1))
        bow_x, bow_y = (
            cx + np.cos(heading) * (length / 2 + beam * 0.3),
            cy + np.sin(heading) * (length / 2 + beam * 0.3),
        )
        # the bow wave
        foam = np.exp(-((fx - bow_x) ** 2 + (fy - bow_y) ** 2) / (2 * max(beam * 0.3, 0.6) ** 2)) * rng.uniform(
            0.1, 0.5
        )
        img[:] = img * (1 - foam[..., None]) + np.float32(230) * foam[..., None]

    view = img[y0:y1, x0:x1]
    # Sun shadow: a darker offset copy of the hull, drawn first.
    shadow = np.roll(cover, (1, 1), axis=(0, 1)) * 0.35
    view *= 1 - shadow[..., None]

    small = length * cfg.gsd < 35
    hull = (
        np.array([215, 215, 210], np.float32)
        if small and rng.random() < 0.7
        else _HULL_COLOURS[rng.integers(len(_HULL_COLOURS))]
    )
    colour = np.broadcast_to(hull + rng.normal(0, 8, 3), cover.shape + (3,)).copy()
    u, v = _along_across(xx, yy, cx, cy, heading)  # along the ship, + towards the bow
    kind = rng.choice(["plain", "tanker", "containers", "bulk"]) if not small else "plain"
    if kind == "containers":
        cell = max(length / 12, 1.0)
        ids = (np.floor((u + length) / cell) * 7 + np.floor((v + beam) / max(beam / 2, 0.8))).astype(int)
        palette = _CONTAINER_COLOURS[rng.integers(0, len(_CONTAINER_COLOURS), 64)]
        deck = (np.abs(u) < length * 0.38) & (np.abs(v) < beam * 0.38)
        colour[deck] = palette[ids[deck] % 64]
    elif kind == "bulk":  # a row of hatch covers, darker or lighter than the deck
        pitch = max(length / rng.uniform(7, 11), 1.0)
        hatch = (np.abs(v) < beam * 0.33) & (np.abs(u) < length * 0.36) & (((u + length) % pitch) < pitch * 0.7)
        colour[hatch] = colour[hatch] * rng.uniform(0.6, 1.3)
    elif kind == "tanker":
        deck = (np.abs(v) < max(beam * 0.08, 0.4)) & (np.abs(u) < length * 0.35)
        colour[deck] = colour[deck] * 0.7 + 60
    # Deck texture: paint wear and small fittings, so a hull is not one flat colour at 1.5 m.
    colour += (
        rng.uniform(3, 10)
        * _fractal(rng, max(colour.shape[:2]), octaves=4, base=4)[: colour.shape[0], : colour.shape[1]]
    )[..., None]
    for _ in range(int(rng.integers(0, 6))):
        fu, fv = rng.uniform(-0.4, 0.3) * length, rng.uniform(-0.3, 0.3) * beam
        fitting = (np.abs(u - fu) < max(length * 0.02, 0.5)) & (np.abs(v - fv) < max(beam * 0.12, 0.5))
        colour[fitting] = colour[fitting] * rng.uniform(0.6, 1.4)
    # Superstructure: a bright block near the stern.
    sup = (u < -length * 0.3) & (u > -length * 0.45) & (np.abs(v) < beam * 0.4)
    colour[sup] = np.array([235, 235, 230], np.float32)
    _paint(view, cover, colour)

    mask = np.zeros((s, s), bool)
    mask[y0:y1, x0:x1] = inside
    return mask


def _along_across(xx, yy, cx, cy, theta):
    """Coordinates in the frame of an object at (cx, cy) pointing along ``theta``: u along it, v across."""
    c, s = np.cos(theta), np.sin(theta)
    return (xx - cx) * c + (yy - cy) * s, -(xx - cx) * s + (yy - cy) * c


def _hull(xx, yy, cx, cy, heading, length, beam) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] of a hull: a rectangle with a pointed bow."""
    u, v = _along_across(xx, yy, cx, cy, heading)
    a, bow = length / 2, min(length * 0.2, 3 * beam)
    half = np.where(u > a - bow, beam / 2 * np.clip((a - u) / bow, 0, 1), beam / 2)
    return np.clip(half - np.abs(v) + 0.5, 0, 1) * np.clip(a - np.abs(u) + 0.5, 0, 1)


def _rectangle(xx, yy, cx, cy, theta, length, width) -> np.ndarray:
    u, v = _along_across(xx, yy, cx, cy, theta)
    return np.clip(width / 2 - np.abs(v) + 0.5, 0, 1) * np.clip(length / 2 - np.abs(u) + 0.5, 0, 1)


def _wake(rng, img, xx, yy, x0, y0, direction, length, beam, strength=1.0) -> None:
    """Turbulent centre wake plus faint Kelvin arms (19.5 deg), fading with distance."""
    u, v = _along_across(xx, yy, x0, y0, direction)  # distance behind the stern
    behind = np.clip(u, 0, None)
    fade = np.where(u > 0, np.exp(-behind / max(length, 1.0)), 0.0)
    width = beam * 0.5 + behind * 0.04
    centre = np.exp(-((v / np.maximum(width, 0.6)) ** 2)) * fade
    # Kelvin arms at 19.5 degrees
    arm = np.exp(-(((np.abs(v) - behind * 0.354) / 0.6) ** 2)) * fade**2 * rng.uniform(0.1, 0.45)
    a = np.clip((centre + arm) * strength, 0, 1).astype(np.float32)
    img[:] = img * (1 - 0.75 * a[..., None]) + np.float32(225) * 0.75 * a[..., None]


def _paint(view: np.ndarray, cover: np.ndarray, colour) -> None:
    c = cover[..., None].astype(np.float32)
    view[:] = view * (1 - c) + np.asarray(colour, np.float32) * c


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur (the optics' point-spread function), edge-padded."""
    radius = max(1, int(math.ceil(2.5 * sigma)))
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2).astype(np.float32)
    k /= k.sum()
    pad = np.pad(img, ((radius, radius), (radius, radius), (0, 0)), mode="edge")
    h, w = img.shape[:2]
    rows = sum(k[i] * pad[i : i + h] for i in range(len(k)))
    return sum(k[i] * rows[:, i : i + w] for i in range(len(k)))
