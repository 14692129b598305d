"""The built-in pelvis phantom: deterministic paired T2-weighted MRI and CT axial slices of a toy anatomy.

:class:`PelvisPhantom` draws, for every patient, a geometric pelvis (body outline, subcutaneous fat,
muscle, hip bones, sacrum, femora, bladder, rectum and bowel with gas, prostate or uterus, iliac vessels)
and renders axial slices from the iliac crest (``z = 0``) down to the proximal femora (``z = 1``) in both
modalities at once, so the pairs are perfectly registered. It is the library's built-in dataset: the
shipped 64 px StyleGAN2 is trained on it and the MRI -> CT benchmarks run on it, without downloading
patient data.

What it is:

- a *geometric toy anatomy*: every structure is an ellipse, a bent plate, a sphere cross-section or a
  union of those, placed by per-patient random parameters (body size and aspect, fat thickness, pelvis
  scale, bladder filling, rectal and bowel gas, sex, organ sizes, small rotation and shift) and warped by
  a smooth random displacement field (a few sinusoids of 12-30 cm wavelength, at most ~1 cm);
- smooth along the body axis: structures appear, grow, shrink and disappear with the axial position ``z``,
  so adjacent slices are more alike than distant ones;
- a two-modality rendering with a tissue table (below), soft anti-aliased edges (a one-pixel ramp on an
  approximate signed distance, which also gives thin structures a partial-volume value), a little tissue
  texture, Gaussian CT noise and, on MRI, a smooth multiplicative bias field and Rician noise;
- MRI -> CT is deliberately not a per-pixel lookup: cortical bone (CT +1100..+1800 HU) and gas (CT -1000)
  are both black on T2, arterial flow voids are black on T2 but soft tissue on CT, and fatty marrow is
  nearly as bright as fat on T2 but +150..+400 HU on CT.

What it is not: a validated anatomical model or a physical simulation. There is no MR physics beyond a
T2-like contrast table, a bias field and Rician noise (no relaxation, no k-space, no chemical shift, no
motion), no CT physics beyond a HU table and noise (no beam hardening, no streaks, no scanner table), and
partial volume comes only from the edge ramp. Organ shapes are plausible at a glance, not accurate; do not
use it to claim anything about real patients.

Tissue table (:data:`TISSUES`; CT in HU, MRI in T2 scanner units; the paper's windows are CT
``[-1000, 2000]`` and MRI ``[0, 1900]``). ``a`` is the patient's attribute (bone density, ``[0, 1]``):

| tissue (key in `TISSUES`)              | CT (HU)      | MRI (T2)      |
|----------------------------------------|--------------|---------------|
| `air`: outside, bowel and rectal gas    | -1000        | 0             |
| `fat`: subcutaneous                     | -100         | 1150          |
| `visceral_fat`: pelvic, mesenteric      | -90          | 1100          |
| `skin`                                  | 30           | 550           |
| `muscle`                                | 45           | 330 (290-380 per patient) |
| `urine`: bladder                        | 8            | 1750          |
| `wall`: bladder, bowel                  | 35           | 420           |
| `bowel_fluid`                           | 12           | 1450          |
| `faeces`: rectum, caecum                | 25           | 520           |
| `collapsed_bowel`                       | 35           | 650           |
| `prostate_tz`: transition zone          | 40           | 620           |
| `prostate_pz`: peripheral zone          | 38           | 1050          |
| `seminal_vesicle`                       | 30           | 1350          |
| `myometrium`                            | 45           | 880           |
| `endometrium`                           | 40           | 1380          |
| `junctional_zone`                       | 45           | 380           |
| `cervix`: cervix, vagina                | 42           | 460           |
| `ovary`                                 | 35           | 1100          |
| `artery`: flow void                     | 42           | 70            |
| `vein`                                  | 42           | 260           |
| `csf`: sacral canal                     | 15           | 1400          |
| `prostate_lesion`                       | 52           | 380           |
| cancellous bone (:func:`bone_values`)   | 150 + 250 a  | 1050 - 400 a  |
| cortical bone                           | 1100 + 700 a | 40            |
| sclerotic bone lesion                   | 1050 + 250 a | 150           |

After painting: soft-tissue texture (+-5 HU, +-4 % MRI), trabecular texture in cancellous bone (fading as
pixels grow past 1.6 mm), CT noise (8-16 HU, slightly correlated) inside the body only, so air outside is
exactly -1000 HU; MRI times a smooth bias field (0.82-1.22), then Rician noise (sigma 10-24).

Per-patient label and attribute:

- ``label`` (``int``): 1 for a patient with lesions, 0 otherwise, drawn with probability 0.5 from the
  seed. A label-1 patient has 2-4 sclerotic bone lesions (round, 7-14 mm radius, in the sacrum, an ilium,
  a femoral head or an ischium: bright on CT, dark on T2) and, if male, a prostate lesion in the
  peripheral zone (dark on T2, +14 HU on CT). The label belongs to the patient; a lesion shows only in the
  slices it crosses (:meth:`PelvisPhantom.lesion_mask` says where).
- ``attribute`` (``float`` in ``[0, 1]``, uniform): bone density. It raises the HU of cancellous and
  cortical bone and of the lesions, and darkens the marrow on T2 (less fatty marrow), the way denser bone
  does, so a model can learn it from either modality.

Determinism: a patient's anatomy, label and attribute depend only on ``(seed, patient index)``; a slice
additionally on its axial position (``slices_per_patient``), ``resolution`` and ``field_of_view_mm``.
Every random draw comes from ``numpy.random.default_rng([seed, patient, stream, ...])``; there is no global
random state, so the same arguments give bit-identical tensors (on one platform and NumPy version) in any
access order, in any process.
"""

from __future__ import annotations

import dataclasses
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
from torch.utils.data import Dataset

from latent_transforms.data.items import BODY_THRESHOLD_HU, item_key
from latent_transforms.errors import ConfigError

__all__ = ["TISSUES", "PelvisPhantom", "bone_values"]

#: Tissue table: name -> (CT in HU, MRI T2 signal in scanner units). Bone depends on the attribute, see
#: :func:`bone_values`.
TISSUES: dict[str, tuple[float, float]] = {
    "air": (-1000.0, 0.0),
    "fat": (-100.0, 1150.0),
    "visceral_fat": (-90.0, 1100.0),
    "skin": (30.0, 550.0),
    "muscle": (45.0, 330.0),
    "urine": (8.0, 1750.0),
    "wall": (35.0, 420.0),
    "bowel_fluid": (12.0, 1450.0),
    "faeces": (25.0, 520.0),
    "collapsed_bowel": (35.0, 650.0),
    "prostate_tz": (40.0, 620.0),
    "prostate_pz": (38.0, 1050.0),
    "seminal_vesicle": (30.0, 1350.0),
    "myometrium": (45.0, 880.0),
    "endometrium": (40.0, 1380.0),
    "junctional_zone": (45.0, 380.0),
    "cervix": (42.0, 460.0),
    "ovary": (35.0, 1100.0),
    "artery": (42.0, 70.0),
    "vein": (42.0, 260.0),
    "csf": (15.0, 1400.0),
    "prostate_lesion": (52.0, 380.0),
}

_MIN_RESOLUTION, _MAX_RESOLUTION = 16, 512
_CACHE_BYTES = 512 * 2**20
# Random streams: the second-to-last entry of every seed list, so draws for one purpose never shift
# another's.
_ANATOMY, _LABEL, _ATTRIBUTE, _LESIONS, _TEXTURE, _NOISE = 1, 2, 3, 4, 5, 6
_TEXTURE_MM, _TEXTURE_Z_MM = 5.0, 6.0  # soft-tissue texture grid: in-plane and axial spacing


def bone_values(attribute: float) -> dict[str, tuple[float, float]]:
    """CT (HU) and MRI (T2 units) of bone tissues for a bone-density ``attribute`` in ``[0, 1]``.

    Denser bone (higher ``attribute``) has higher HU and less fatty, hence darker, marrow on T2.

    Args:
        attribute: bone density in ``[0, 1]``.

    Returns:
        ``{"cancellous": (ct, mri), "cortical": (ct, mri), "lesion": (ct, mri)}``.

    Example:
        >>> bone_values(0.0)["cortical"], bone_values(1.0)["cancellous"]
        ((1100.0, 40.0), (400.0, 650.0))
    """
    a = float(attribute)
    if not 0.0 <= a <= 1.0:
        raise ConfigError(f"bone_values needs an attribute in [0, 1]; got {attribute}.")
    return {
        "cancellous": (150.0 + 250.0 * a, 1050.0 - 400.0 * a),
        "cortical": (1100.0 + 700.0 * a, 40.0),
        "lesion": (1050.0 + 250.0 * a, 150.0),
    }


# --------------------------------------------------------------------------------------------------------
# small geometry helpers (scalars)


def _smoothstep(x: float, lo: float, hi: float) -> float:
    t = min(1.0, max(0.0, (x - lo) / (hi - lo)))
    return t * t * (3.0 - 2.0 * t)


def _window(z: float, z0: float, z1: float, edge: float) -> float:
    """1 inside ``[z0, z1]``, ramping smoothly to 0 over ``edge`` outside each end."""
    return _smoothstep(z, z0 - edge, z0) * (1.0 - _smoothstep(z, z1, z1 + edge))


def _dome(z: float, z0: float, z1: float) -> float:
    """Cross-section scale of an ellipsoid spanning ``[z0, z1]``: 1 at the middle, 0 at the ends."""
    t = (2.0 * z - z0 - z1) / (z1 - z0)
    return math.sqrt(max(0.0, 1.0 - t * t))


def _keyframes(z: float, zs: Sequence[float], values: Sequence[float]) -> float:
    """Interpolate ``values`` at ``zs`` with smoothstep easing (C1 at the knots); constant beyond the ends."""
    if z <= zs[0]:
        return float(values[0])
    for k in range(1, len(zs)):
        if z <= zs[k]:
            t = (z - zs[k - 1]) / (zs[k] - zs[k - 1])
            t = t * t * (3.0 - 2.0 * t)
            return float(values[k - 1] + t * (values[k] - values[k - 1]))
    return float(values[-1])


def _sphere_radius(radius: float, dz: float) -> float:
    return math.sqrt(max(0.0, radius * radius - dz * dz))


# --------------------------------------------------------------------------------------------------------
# per-patient parameters


@dataclass(frozen=True)
class _Lesion:
    host: str  # "sacrum", "hip_R", "femur_L", ... or "prostate"
    x: float
    y: float
    z_mm: float
    radius: float


@dataclass(frozen=True)
class _Patient:
    index: int
    sex: str
    label: int
    attribute: float
    height: float  # mm from iliac crest (z=0) to the proximal femora (z=1)
    a0: float  # body half-width (mm)
    b0: float  # body half-depth (mm)
    fat: float  # subcutaneous fat thickness (mm)
    rotation: float  # rad
    shift: tuple[float, float]  # mm
    kx: float  # pelvis scale, left-right
    ky: float  # pelvis scale, antero-posterior
    asym: float  # small left-right asymmetry of the bones (mm)
    bladder: float  # filling in [0, 1]
    bladder_xy: tuple[float, float]
    rectum_r: float
    organ_scale: float  # prostate / uterus size factor
    organ_xy: tuple[float, float]
    gas: tuple[tuple[float, float, float, float], ...]  # rectal gas: (dx, dy, z_mm, r)
    loops: tuple[tuple[float, float, float, float, float, float], ...]  # bowel: x, y, z_mm, r, gas, content
    deform: np.ndarray  # [K, 5]: amplitude x, amplitude y, kx, ky, kz, phase
    bias: np.ndarray  # [K, 5]: amplitude, kx, ky, kz, phase
    mri_gain: float
    mri_sigma: float
    ct_sigma: float
    muscle_mri: float
    lesions: tuple[_Lesion, ...]

    @property
    def max_displacement(self) -> float:
        return float(np.abs(self.deform[:, 0]).sum() + np.abs(self.deform[:, 1]).sum())


def _bone_ellipses(p: _Patient, z: float) -> dict[str, tuple[float, float, float, float, float, float]]:
    """Ellipse primitives of the skeleton at ``z``: name -> (cx, cy, a, b, angle, bend), mm and rad.

    ``a`` runs along the rotated x axis, ``b`` across; ``bend`` bows the ellipse (1/mm). Names end in
    ``_R`` (image left) or ``_L``. Primitives absent at ``z`` are left out.
    """
    kx, ky = p.kx, p.ky
    k = math.sqrt(kx * ky)
    z_mm = z * p.height
    out: dict[str, tuple[float, float, float, float, float, float]] = {}

    fade = _window(z, 0.02, 0.52, 0.1)
    if fade > 0:
        ys = _keyframes(z, [0.0, 0.3, 0.6], [30.0, 46.0, 52.0]) * ky
        a = _keyframes(z, [0.0, 0.15, 0.35, 0.6], [48.0, 44.0, 30.0, 8.0]) * kx * fade
        b = _keyframes(z, [0.0, 0.3, 0.6], [24.0, 17.0, 7.0]) * ky * fade
        out["sacrum"] = (0.0, ys, a, b, 0.0, _keyframes(z, [0.0, 0.4], [0.004, 0.0]))
        spine = 1.0 - _smoothstep(z, 0.25, 0.4)
        if spine > 0:  # spinous process / median sacral crest
            out["spine"] = (0.0, ys + b + 6.0 * ky * spine, 5.0 * k * spine, 11.0 * k * spine, 0.0, 0.0)

    for side, name in ((-1.0, "R"), (1.0, "L")):
        dx = p.asym * side
        # ilium: a plate between a medial (sacroiliac) and a lateral (anterior spine) end point, thick at
        # the back (posterior ilium), thin across the wing
        fade = _window(z, 0.03, 0.56, 0.06)
        if fade > 0:
            zs = [0.0, 0.15, 0.3, 0.42, 0.52, 0.62]
            mx = _keyframes(z, zs, [54.0, 50.0, 48.0, 60.0, 72.0, 78.0])
            my = _keyframes(z, zs, [38.0, 44.0, 48.0, 36.0, 20.0, 10.0])
            lx = _keyframes(z, zs, [118.0, 120.0, 114.0, 104.0, 98.0, 96.0])
            ly = _keyframes(z, zs, [-18.0, -32.0, -40.0, -26.0, -8.0, 0.0])
            h = _keyframes(z, zs, [5.5, 3.5, 4.5, 11.0, 16.0, 19.0]) * k
            mx, lx = side * mx * kx + dx, side * lx * kx + dx
            my, ly = my * ky, ly * ky
            length = math.hypot(lx - mx, ly - my) / 2.0 * (0.6 + 0.4 * fade)
            angle = math.atan2(ly - my, lx - mx)
            bend = -side * _keyframes(z, [0.0, 0.3, 0.45], [0.005, 0.004, 0.0])
            out[f"ilium_{name}"] = ((mx + lx) / 2, (my + ly) / 2, length + h, h * fade, angle, bend)
            post = 1.0 - _smoothstep(z, 0.32, 0.46)
            if post > 0:
                px_, py_ = mx + 0.22 * (lx - mx), my + 0.22 * (ly - my)
                out[f"iliumpost_{name}"] = (px_, py_, 26.0 * k * fade, 11.0 * k * post * fade, angle, 0.0)
        # femoral head: a sphere
        hx, hy, hz, hr = side * 92.0 * kx + dx, 2.0 * ky, 0.66 * p.height, 23.0 * k
        r = _sphere_radius(hr, z_mm - hz)
        if r > 0:
            out[f"head_{name}"] = (hx, hy, r, r, 0.0, 0.0)
        # acetabulum: around the head, open laterally (cut later)
        fade = _dome(z, 0.5, 0.8)
        if fade > 0:
            s = math.sqrt(fade)
            out[f"acetabulum_{name}"] = (hx - side * 9.0 * kx, hy, (hr + 14.0) * s, (hr + 15.0) * s, 0.0, 0.0)
        # femoral neck and greater trochanter
        fade = _window(z, 0.7, 1.2, 0.06)
        if fade > 0:
            zs = [0.66, 0.76, 0.86, 0.97]
            cx = side * _keyframes(z, zs, [100.0, 116.0, 128.0, 124.0]) * kx + dx
            cy = _keyframes(z, zs, [2.0, 4.0, 8.0, 10.0]) * ky
            a = _keyframes(z, zs, [18.0, 32.0, 30.0, 17.0]) * k * fade
            b = _keyframes(z, zs, [14.0, 18.0, 24.0, 15.0]) * k * fade
            out[f"neck_{name}"] = (cx, cy, a, b, side * _keyframes(z, zs, [0.3, 0.25, 0.0, 0.0]), 0.0)
        fade = _smoothstep(z, 0.88, 0.95)
        if fade > 0:
            out[f"shaft_{name}"] = (
                side * 122.0 * kx + dx,
                10.0 * ky,
                14.0 * k * fade,
                14.0 * k * fade,
                0.0,
                0.0,
            )
        # superior pubic ramus: plate from the acetabulum to the pubic body
        fade = _dome(z, 0.62, 0.84)
        if fade > 0:
            x0, y0, x1, y1 = side * 78.0 * kx + dx, -20.0 * ky, side * 20.0 * kx + dx, -62.0 * ky
            h = 8.0 * k * math.sqrt(fade)
            out[f"ramus_{name}"] = (
                (x0 + x1) / 2,
                (y0 + y1) / 2,
                math.hypot(x1 - x0, y1 - y0) / 2 * fade + h,
                h,
                math.atan2(y1 - y0, x1 - x0),
                0.0,
            )
        # pubic body beside the symphysis
        fade = _dome(z, 0.72, 0.96)
        if fade > 0:
            s = math.sqrt(fade)
            out[f"pubis_{name}"] = (
                side * 16.0 * kx,
                -66.0 * ky,
                11.0 * k * s,
                17.0 * k * s,
                -side * 0.35,
                0.0,
            )
        # ischium down to the ischial tuberosity
        fade = _window(z, 0.7, 1.05, 0.06)
        if fade > 0:
            zs = [0.66, 0.8, 0.95, 1.0]
            cx = side * _keyframes(z, zs, [86.0, 76.0, 62.0, 58.0]) * kx + dx
            cy = _keyframes(z, zs, [30.0, 36.0, 44.0, 45.0]) * ky
            a = _keyframes(z, zs, [12.0, 15.0, 21.0, 18.0]) * k * fade
            b = _keyframes(z, zs, [18.0, 20.0, 16.0, 13.0]) * k * fade
            out[f"ischium_{name}"] = (cx, cy, a, b, -side * 0.3, 0.0)
        # ischio-pubic ramus
        fade = _dome(z, 0.86, 1.14)
        if fade > 0:
            x0, y0, x1, y1 = side * 22.0 * kx + dx, -56.0 * ky, side * 52.0 * kx + dx, 22.0 * ky
            h = 6.0 * k * math.sqrt(fade)
            out[f"iramus_{name}"] = (
                (x0 + x1) / 2,
                (y0 + y1) / 2,
                math.hypot(x1 - x0, y1 - y0) / 2 + h,
                h,
                math.atan2(y1 - y0, x1 - x0),
                0.0,
            )
    return out


def _rectum(p: _Patient, z: float) -> tuple[float, float, float]:
    """Centre (x, y) and radius (mm) of the sigmoid colon / rectum at ``z``."""
    zs = [0.0, 0.2, 0.32, 0.42, 0.6, 0.8, 0.95, 1.0]
    x = _keyframes(z, zs, [55.0, 50.0, 28.0, 6.0, 0.0, 0.0, 0.0, 0.0]) * p.kx
    y = _keyframes(z, zs, [-5.0, 2.0, 12.0, 18.0, 24.0, 24.0, 20.0, 18.0]) * p.ky
    r = _keyframes(z, zs, [15.0, 17.0, 17.0, 17.0, 19.0, 16.0, 9.0, 7.0]) / 17.0 * p.rectum_r
    return x, y, r


_LESION_HOSTS: tuple[tuple[str, float, float], ...] = (
    ("sacrum", 0.08, 0.4),
    ("ilium_R", 0.36, 0.55),
    ("ilium_L", 0.36, 0.55),
    ("head_R", 0.6, 0.72),
    ("head_L", 0.6, 0.72),
    ("ischium_R", 0.76, 0.96),
    ("ischium_L", 0.76, 0.96),
)


def _draw_patient(seed: int, index: int) -> _Patient:
    rng = np.random.default_rng([seed, index, _ANATOMY])
    u = rng.uniform
    sex = "M" if u() < 0.5 else "F"
    female = sex == "F"
    a0 = u(136.0, 168.0) + (5.0 if female else 0.0)
    b0 = a0 * u(0.62, 0.76)
    fat = float(np.clip(rng.gamma(4.0, 4.5) + (4.0 if female else 0.0), 5.0, 42.0))
    muscle_a, muscle_b = a0 - 0.8 * fat, b0 - 1.0 * fat
    kx = float(np.clip(muscle_a / 142.0 * u(0.95, 1.05) * (1.04 if female else 1.0), 0.8, 1.18))
    ky = float(np.clip(muscle_b / 92.0 * u(0.95, 1.05), 0.8, 1.25))
    n_gas = int(rng.integers(1, 5))
    height = u(195.0, 230.0)
    gas = tuple((u(-6.0, 6.0), u(-9.0, 2.0), u(0.05, 0.85) * height, u(5.0, 13.0)) for _ in range(n_gas))
    loops = []
    for _ in range(int(rng.integers(20, 30))):
        t, rad = u(0.0, 2.0 * math.pi), math.sqrt(u(0.0, 1.0))
        x = 0.55 * muscle_a * rad * math.cos(t)
        y = -0.3 * muscle_b + 0.45 * muscle_b * rad * math.sin(t)
        kind = u()  # 0: fluid-filled, 2: collapsed (wall and mucus), gas above an air-fluid level in some
        gas_fraction = u(0.1, 0.55) if kind < 0.25 else 0.0
        content = 0.0 if kind < 0.55 else 2.0
        loops.append((x, y, u(-0.05, 0.55) * height, u(8.0, 15.0), gas_fraction, content))
    # caecum, on the patient's right (image left): faeces and usually some gas
    loops.append((-0.42 * muscle_a, -0.2 * muscle_b, u(0.1, 0.2) * height, u(18.0, 26.0), u(0.0, 0.4), 1.0))
    k_def = 3
    deform = np.stack(
        [
            rng.uniform(-3.0, 3.0, 2 * k_def),
            rng.uniform(-3.0, 3.0, 2 * k_def),
            rng.uniform(-1.0, 1.0, 2 * k_def) * 2 * math.pi / 150.0,
            rng.uniform(-1.0, 1.0, 2 * k_def) * 2 * math.pi / 150.0,
            rng.uniform(-1.0, 1.0, 2 * k_def) * 2 * math.pi / 300.0,
            rng.uniform(0.0, 2 * math.pi, 2 * k_def),
        ],
        axis=1,
    )
    deform[:k_def, 1] = 0.0  # the first components move x, the others y
    deform[k_def:, 0] = 0.0
    bias = np.stack(
        [
            rng.uniform(0.03, 0.07, 3),
            rng.uniform(-1.0, 1.0, 3) * 2 * math.pi / 500.0,
            rng.uniform(-1.0, 1.0, 3) * 2 * math.pi / 500.0,
            rng.uniform(-1.0, 1.0, 3) * 2 * math.pi / 800.0,
            rng.uniform(0.0, 2 * math.pi, 3),
        ],
        axis=1,
    )
    label = int(np.random.default_rng([seed, index, _LABEL]).uniform() < 0.5)
    attribute = float(np.random.default_rng([seed, index, _ATTRIBUTE]).uniform())
    base = _Patient(
        index=index,
        sex=sex,
        label=label,
        attribute=attribute,
        height=height,
        a0=a0,
        b0=b0,
        fat=fat,
        rotation=u(-0.07, 0.07),
        shift=(u(-8.0, 8.0), u(-6.0, 6.0)),
        kx=kx,
        ky=ky,
        asym=u(-3.0, 3.0),
        bladder=u(0.0, 1.0),
        bladder_xy=(u(-6.0, 6.0), u(-6.0, 6.0)),
        rectum_r=u(13.0, 20.0),
        organ_scale=u(0.85, 1.3) if not female else u(0.85, 1.15),
        organ_xy=(u(-5.0, 5.0), u(-4.0, 4.0)),
        gas=gas,
        loops=tuple(loops),
        deform=deform.astype(np.float64),
        bias=bias,
        mri_gain=u(0.93, 1.07),
        mri_sigma=u(10.0, 24.0),
        ct_sigma=u(8.0, 16.0),
        muscle_mri=u(290.0, 380.0),
        lesions=(),
    )
    if not label:
        return base
    lr = np.random.default_rng([seed, index, _LESIONS])
    lesions = []
    for _ in range(int(lr.integers(2, 5))):
        host, z0, z1 = _LESION_HOSTS[int(lr.integers(len(_LESION_HOSTS)))]
        z = lr.uniform(z0, z1)
        cx, cy, a, b, angle, _ = _bone_ellipses(base, z)[host]
        along, across = lr.uniform(-0.45, 0.45) * a, lr.uniform(-0.3, 0.3) * b
        x = cx + along * math.cos(angle) - across * math.sin(angle)
        y = cy + along * math.sin(angle) + across * math.cos(angle)
        radius = lr.uniform(7.0, 14.0)
        lesions.append(_Lesion(host, x, y, z * base.height, min(radius, 0.8 * max(a, b))))
    if sex == "M":
        side = 1.0 if lr.uniform() < 0.5 else -1.0
        lesions.append(
            _Lesion(
                "prostate",
                base.organ_xy[0] + side * lr.uniform(5.0, 11.0),
                -15.0 * ky + base.organ_xy[1] + lr.uniform(5.0, 9.0),
                lr.uniform(0.83, 0.91) * height,
                lr.uniform(5.0, 9.0),
            )
        )
    return dataclasses.replace(base, lesions=tuple(lesions))


# --------------------------------------------------------------------------------------------------------
# rendering


class _Canvas:
    """Patient coordinates of every pixel and a 4-channel paint buffer: CT, MRI, trabecular, lesion."""

    def __init__(self, p: _Patient, z: float, resolution: int, fov: float) -> None:
        self.n = resolution
        self.px = fov / resolution
        self.lo = -fov / 2
        self.inv_px = np.float32(1.0 / self.px)
        q = (np.arange(resolution) + 0.5) * self.px + self.lo
        z_mm = z * p.height
        c, s = math.cos(p.rotation), math.sin(p.rotation)
        self.rot = (c, s)
        self.shift = p.shift
        qx, qy = q - p.shift[0], q - p.shift[1]
        # p = R (q - t) + d(q); x along columns, y along rows. Sums of separable terms: a full-frame
        # array costs one outer product each.
        x = (c * qx).astype(np.float32)[None, :] - (s * qy).astype(np.float32)[:, None]
        y = (s * qx).astype(np.float32)[None, :] + (c * qy).astype(np.float32)[:, None]
        for ax, ay, wx, wy, wz, phase in p.deform:
            # amplitude * sin(wx qx + wy qy + wz z + phase), expanded as a sum of two outer products
            sa = ((ax + ay) * np.sin(wx * q + phase + wz * z_mm)).astype(np.float32)
            ca = ((ax + ay) * np.cos(wx * q + phase + wz * z_mm)).astype(np.float32)
            cb, sb = np.cos(wy * q).astype(np.float32), np.sin(wy * q).astype(np.float32)
            target = x if ax else y
            target += sa[None, :] * cb[:, None]
            target += ca[None, :] * sb[:, None]
        self.x, self.y = x, y
        self.margin = p.max_displacement + 2.0 * self.px
        self.buf = np.zeros((4, resolution, resolution), np.float32)
        self.buf[0] = TISSUES["air"][0]
        self.channels = 2  # trabecular and lesion channels stay 0 until something paints them
        self.full = (slice(0, resolution), slice(0, resolution))

    def window(self, cx: float, cy: float, radius: float) -> tuple[slice, slice] | None:
        """Pixel rows and columns that can hold a structure of ``radius`` mm around patient point (cx, cy)."""
        c, s = self.rot
        qx = c * cx + s * cy + self.shift[0]
        qy = -s * cx + c * cy + self.shift[1]
        r = radius + self.margin
        j0 = max(0, math.floor((qx - r - self.lo) / self.px))
        j1 = min(self.n, math.ceil((qx + r - self.lo) / self.px) + 1)
        i0 = max(0, math.floor((qy - r - self.lo) / self.px))
        i1 = min(self.n, math.ceil((qy + r - self.lo) / self.px) + 1)
        if j0 >= j1 or i0 >= i1:
            return None
        return slice(i0, i1), slice(j0, j1)

    def union(self, *wins: tuple[slice, slice] | None) -> tuple[slice, slice] | None:
        present = [w for w in wins if w is not None]
        if not present:
            return None
        return (
            slice(min(w[0].start for w in present), max(w[0].stop for w in present)),
            slice(min(w[1].start for w in present), max(w[1].stop for w in present)),
        )

    def ellipse(
        self,
        win: tuple[slice, slice],
        cx: float,
        cy: float,
        a: float | np.ndarray,
        b: float | np.ndarray,
        angle: float = 0.0,
        bend: float = 0.0,
    ) -> np.ndarray:
        """Approximate signed distance (mm, negative inside) to an ellipse, on the window's pixels.

        First-order distance ``(q - 1) / |grad q|`` of ``q = |(u/a, v/b)|``: exact on the boundary and good
        within a few mm of it, which is where edges, shells and offsets are drawn.
        """
        dx = self.x[win] - np.float32(cx)
        dy = self.y[win] - np.float32(cy)
        if angle:
            c, s = np.float32(math.cos(angle)), np.float32(math.sin(angle))
            dx, dy = c * dx + s * dy, c * dy - s * dx
        if bend:
            dy = dy - np.float32(bend) * dx * dx
        a = a if isinstance(a, np.ndarray) else np.float32(a)
        b = b if isinstance(b, np.ndarray) else np.float32(b)
        u = dx / a
        v = dy / b
        q = np.sqrt(u * u + v * v)
        g = np.sqrt((u / a) ** 2 + (v / b) ** 2)
        tiny = np.float32(1e-6)
        return (q - 1) * np.maximum(q, tiny) / np.maximum(g, tiny / np.minimum(a, b))

    def circle(self, win: tuple[slice, slice], cx: float, cy: float, r: float) -> np.ndarray:
        dx = self.x[win] - np.float32(cx)
        dy = self.y[win] - np.float32(cy)
        return np.sqrt(dx * dx + dy * dy) - np.float32(r)

    def paint(self, win: tuple[slice, slice], phi: np.ndarray, values: np.ndarray) -> None:
        """Alpha-blend ``values`` (4,) over the window where ``phi < 0``, with a one-pixel edge ramp."""
        if values[2] or values[3]:
            self.channels = 4
        n = self.channels
        occ = np.clip(np.float32(0.5) - phi * self.inv_px, 0.0, 1.0)
        sub = self.buf[:n, win[0], win[1]]
        sub += occ * (values[:n, None, None] - sub)


def _tissue(name: str, trabecular: float = 0.0, lesion: float = 0.0) -> np.ndarray:
    ct, mri = TISSUES[name]
    return np.array([ct, mri, trabecular, lesion], np.float32)


def _values(ct: float, mri: float, trabecular: float = 0.0, lesion: float = 0.0) -> np.ndarray:
    return np.array([ct, mri, trabecular, lesion], np.float32)


def _smooth_max(a: np.ndarray, b: np.ndarray | float, k: float) -> np.ndarray:
    h = np.clip(k - np.abs(a - b), 0.0, None) / np.float32(k)
    return np.maximum(a, b) + h * h * np.float32(k / 4.0)


def _render_anatomy(cv: _Canvas, p: _Patient, z: float) -> None:
    """Paint the noise-free slice at ``z`` into ``cv.buf``."""
    kx, ky = p.kx, p.ky
    z_mm = z * p.height
    female = p.sex == "F"
    full = cv.full
    x, y = cv.x, cv.y

    # body outline: an egg-shaped ellipse flattened on the table, hips widening towards the trochanters,
    # buttocks with a natal cleft in the lower slices
    a = p.a0 * (0.93 + 0.1 * _smoothstep(z, 0.35, 0.85))
    b_ant = p.b0 * (1.0 + 0.1 * (1.0 - z))
    b_post = p.b0 * 0.97
    b = np.where(y < 0, np.float32(b_ant), np.float32(b_post))
    phi_body = cv.ellipse(full, 0.0, 0.0, a, b)
    phi_body = _smooth_max(phi_body, y - np.float32(0.86 * b_post), 25.0)
    cleft = _smoothstep(z, 0.5, 0.8)
    if cleft > 0:
        win = cv.window(0.0, 0.86 * b_post, 45.0)
        if win is not None:
            phi_c = cv.ellipse(win, 0.0, 0.86 * b_post, 2.5 + 3.0 * cleft, 32.0 * cleft)
            phi_body[win] = np.maximum(phi_body[win], -phi_c)
    cv.paint(full, phi_body, _tissue("skin"))
    cv.paint(full, phi_body + np.float32(2.0), _tissue("fat"))
    # muscle under a fat layer that is thicker in front, and at the hips in women
    lateral = np.abs(x) * np.float32(1.0 / a)
    front = np.clip(-y * np.float32(1.0 / p.b0), 0.0, 1.0)
    thickness = np.float32(p.fat) * (
        np.float32(0.75) + np.float32(0.45) * front + np.float32(0.35 if female else 0.1) * lateral
    )
    phi_muscle = phi_body + np.float32(2.0) + thickness
    muscle = _values(TISSUES["muscle"][0], p.muscle_mri)
    cv.paint(full, phi_muscle, muscle)

    # fat planes between muscle groups (gluteal fascia, around the hip)
    for side in (-1.0, 1.0):
        cx, cy = side * 95.0 * kx, 25.0 * ky
        ra, rb = 70.0 * kx, 62.0 * ky
        win = cv.window(cx, cy, max(ra, rb) + 3.0)
        if win is not None:
            shell = np.abs(cv.ellipse(win, cx, cy, ra, rb)) - np.float32(1.2)
            shell = np.maximum(shell, np.float32(cy) - cv.y[win])  # posterior half only
            shell = np.maximum(shell, phi_muscle[win] + np.float32(4.0))
            cv.paint(win, shell, _tissue("visceral_fat"))

    # abdominal cavity (upper slices) and pelvic cavity (lower slices), filled with fat
    ma, mb = p.a0 - 0.8 * p.fat, p.b0 - p.fat
    fade = 1.0 - _smoothstep(z, 0.32, 0.5)
    if fade > 0:
        cx, cy = 0.0, -0.3 * mb
        ca, cb = 0.62 * ma * math.sqrt(fade), 0.55 * mb * math.sqrt(fade)
        win = cv.window(cx, cy, max(ca, cb))
        if win is not None:
            phi = np.maximum(cv.ellipse(win, cx, cy, ca, cb), phi_muscle[win] + np.float32(11.0))
            cv.paint(win, phi, _tissue("visceral_fat"))
    fade = _smoothstep(z, 0.28, 0.45)
    if fade > 0:
        cx, cy = 0.0, _keyframes(z, [0.4, 0.8, 1.0], [12.0, 0.0, 5.0]) * ky
        ca = (_keyframes(z, [0.4, 0.6, 0.8, 1.0], [50.0, 44.0, 42.0, 34.0]) + (6.0 if female else 0.0)) * kx
        cb = _keyframes(z, [0.4, 0.8, 1.0], [55.0, 56.0, 40.0]) * ky
        ca, cb = ca * math.sqrt(fade), cb * math.sqrt(fade)
        win = cv.window(cx, cy, max(ca, cb))
        if win is not None:
            phi = np.maximum(cv.ellipse(win, cx, cy, ca, cb), phi_muscle[win] + np.float32(11.0))
            cv.paint(win, phi, _tissue("visceral_fat"))
    fade = _window(z, 0.84, 1.1, 0.06)
    if fade > 0:
        for side in (-1.0, 1.0):
            cx, cy = side * 36.0 * kx, 42.0 * ky
            win = cv.window(cx, cy, 32.0)
            if win is not None:
                phi = cv.ellipse(win, cx, cy, 20.0 * kx * fade, 30.0 * ky * fade, side * 0.5)
                cv.paint(win, phi, _tissue("visceral_fat"))

    # psoas (iliopsoas lower down) in a thin fat sheath
    zs = [0.0, 0.3, 0.5, 0.7, 0.9, 1.0]
    cx = _keyframes(z, zs, [40.0, 55.0, 68.0, 82.0, 88.0, 88.0]) * kx
    cy = _keyframes(z, zs, [12.0, 2.0, -16.0, -40.0, -50.0, -52.0]) * ky
    pa = _keyframes(z, zs, [22.0, 20.0, 18.0, 20.0, 18.0, 17.0]) * kx
    pb = _keyframes(z, zs, [18.0, 16.0, 15.0, 14.0, 13.0, 12.0]) * ky
    for side in (-1.0, 1.0):
        win = cv.window(side * cx, cy, pa + 3.0)
        if win is not None:
            phi = cv.ellipse(win, side * cx, cy, pa, pb, side * 0.5)
            cv.paint(win, phi - np.float32(1.5), _tissue("visceral_fat"))
            cv.paint(win, phi, muscle)

    # iliac / femoral vessels, each in a little fat
    zs = [0.0, 0.3, 0.6, 0.75, 1.0]
    vx = _keyframes(z, zs, [22.0, 42.0, 60.0, 66.0, 68.0]) * kx
    vy = _keyframes(z, zs, [-6.0, -18.0, -40.0, -58.0, -64.0]) * ky
    for side in (-1.0, 1.0):
        ax, ay = side * vx, vy
        wx, wy = side * (vx - 9.0), vy + 5.0
        win = cv.window((ax + wx) / 2, (ay + wy) / 2, 20.0)
        if win is None:
            continue
        fat = np.minimum(cv.circle(win, ax, ay, 8.5), cv.circle(win, wx, wy, 10.0))
        cv.paint(win, fat, _tissue("visceral_fat"))
        cv.paint(win, cv.circle(win, wx, wy, 6.0), _tissue("vein"))
        cv.paint(win, cv.circle(win, ax, ay, 4.2), _tissue("artery"))

    # small bowel loops (fluid, sometimes gas above an air-fluid level) and the caecum (faeces)
    for bx, by, bz, br, gas_fraction, content in p.loops:
        r = _sphere_radius(br, z_mm - bz)
        if r < 1.0:
            continue
        win = cv.window(bx, by, r)
        if win is None:
            continue
        phi = cv.circle(win, bx, by, r)
        cv.paint(win, phi, _tissue("wall"))
        lumen = phi + np.float32(2.5)
        cv.paint(win, lumen, _tissue(("bowel_fluid", "faeces", "collapsed_bowel")[int(content)]))
        if gas_fraction > 0:
            level = np.float32(by - br + 2.0 * br * gas_fraction)
            cv.paint(win, np.maximum(lumen, cv.y[win] - level), _tissue("air"))

    # sigmoid colon and rectum with faeces and gas (gas floats anteriorly: the patient lies supine)
    rx, ry, rr = _rectum(p, z)
    win = cv.window(rx, ry, rr * 1.2)
    if win is not None and rr > 1.0:
        phi = cv.ellipse(win, rx, ry, rr * 1.12, rr * 0.88)
        cv.paint(win, phi, _tissue("wall"))
        lumen = phi + np.float32(3.0)
        cv.paint(win, lumen, _tissue("faeces"))
        for gx, gy, gz, gr in p.gas:
            r = _sphere_radius(gr, z_mm - gz)
            if r > 0.5:
                cx, cy, _ = _rectum(p, gz / p.height)
                cv.paint(win, np.maximum(cv.circle(win, cx + gx, cy + gy, r), lumen), _tissue("air"))

    # reproductive organs
    ox, oy = p.organ_xy
    if female:
        fade = _dome(z, 0.36, 0.76)
        if fade > 0:
            cy = _keyframes(z, [0.38, 0.56, 0.74], [-30.0, -16.0, -6.0]) * ky + oy
            ua, ub = 34.0 * p.organ_scale * fade, 24.0 * p.organ_scale * fade
            win = cv.window(ox, cy, ua)
            if win is not None:
                phi = cv.ellipse(win, ox, cy, ua, ub)
                cv.paint(win, phi, _tissue("myometrium"))
                inner = cv.ellipse(win, ox, cy, 0.5 * ua, 0.28 * ub)
                cv.paint(win, inner - np.float32(4.0), _tissue("junctional_zone"))
                cv.paint(win, inner, _tissue("endometrium"))
        fade = _window(z, 0.74, 1.1, 0.05)
        if fade > 0:
            cy = _keyframes(z, [0.74, 1.0], [-6.0, -8.0]) * ky + oy
            win = cv.window(ox, cy, 18.0)
            if win is not None:
                cv.paint(win, cv.ellipse(win, ox, cy, 16.0 * fade, 9.0 * fade), _tissue("cervix"))
                cv.paint(win, cv.ellipse(win, ox, cy, 8.0 * fade, 1.8 * fade), _tissue("endometrium"))
        fade = _dome(z, 0.4, 0.58)
        for side in (-1.0, 1.0):
            if fade > 0:
                cx, cy = side * 50.0 * kx, 2.0 * ky
                win = cv.window(cx, cy, 15.0)
                if win is not None:
                    cv.paint(
                        win, cv.ellipse(win, cx, cy, 14.0 * fade, 9.0 * fade, 0.4 * side), _tissue("ovary")
                    )
    else:
        fade = _dome(z, 0.66, 0.8)
        for side in (-1.0, 1.0):
            if fade > 0:
                cx, cy = ox + side * 17.0 * kx, -2.0 * ky + oy
                win = cv.window(cx, cy, 16.0)
                if win is not None:
                    phi = cv.ellipse(win, cx, cy, 15.0 * fade, 6.0 * fade, -0.35 * side)
                    cv.paint(win, phi, _tissue("seminal_vesicle"))
        fade = _dome(z, 0.77, 0.98)
        if fade > 0:
            cy = -15.0 * ky + oy
            pa, pb = 21.0 * p.organ_scale * fade, 16.0 * p.organ_scale * fade
            win = cv.window(ox, cy, pa)
            if win is not None:
                phi = cv.ellipse(win, ox, cy, pa, pb)
                cv.paint(win, phi, _tissue("prostate_pz"))
                tz = cv.ellipse(win, ox, cy - 0.3 * pb, 0.72 * pa, 0.62 * pb)
                cv.paint(win, tz, _tissue("prostate_tz"))
                for les in p.lesions:
                    if les.host == "prostate":
                        r = _sphere_radius(les.radius, z_mm - les.z_mm)
                        if r > 0:
                            phi_l = np.maximum(cv.circle(win, les.x, les.y, r), phi + np.float32(1.0))
                            cv.paint(win, phi_l, _tissue("prostate_lesion", lesion=1.0))

    # bladder: filling moves the dome up and widens it
    f = p.bladder
    z_top, z_base = 0.72 - 0.42 * f, 0.81
    fade = _dome(z, z_top, z_base)
    if fade > 0:
        cx, cy = p.bladder_xy[0], (-38.0 - 6.0 * f) * ky + p.bladder_xy[1]
        ba, bb = (22.0 + 36.0 * f) * kx * fade, (16.0 + 22.0 * f) * ky * fade
        win = cv.window(cx, cy, max(ba, bb))
        if win is not None:
            phi = cv.ellipse(win, cx, cy, ba, bb)
            cv.paint(win, phi, _tissue("wall"))
            cv.paint(win, phi + np.float32(3.0), _tissue("urine"))

    # skeleton: hip bones, sacrum, femora, each painted as one cortical shell around a cancellous core
    bones = _bone_ellipses(p, z)
    bv = bone_values(p.attribute)
    cortical = _values(*bv["cortical"])
    cancellous = _values(*bv["cancellous"], trabecular=1.0)
    lesion_v = _values(*bv["lesion"], lesion=1.0)
    groups: dict[str, list[str]] = {"sacrum": ["sacrum", "spine"]}
    for name in ("R", "L"):
        groups[f"hip_{name}"] = [
            f"{part}_{name}"
            for part in ("ilium", "iliumpost", "acetabulum", "ramus", "pubis", "ischium", "iramus")
        ]
        groups[f"femur_{name}"] = [f"{part}_{name}" for part in ("head", "neck", "shaft")]
    host_of = {part: group for group, parts in groups.items() for part in parts}
    for group, parts in groups.items():
        prims = [(n, bones[n]) for n in parts if n in bones]
        if not prims:
            continue
        # reach of a bent ellipse: its semi-axes plus the bow at the tips
        win = cv.union(
            *(cv.window(e[0], e[1], max(e[2], e[3]) + abs(e[5]) * e[2] ** 2 + 2.0) for _, e in prims)
        )
        if win is None:
            continue
        phi = None
        for name, (cx, cy, ea, eb, angle, bend) in prims:
            if name.startswith("acetabulum"):
                side = 1.0 if name.endswith("L") else -1.0
                part = cv.ellipse(win, cx, cy, ea, eb)
                head = bones.get(name.replace("acetabulum", "head"))
                if head is not None:
                    joint = cv.circle(win, head[0], head[1], head[2] + 2.5)
                    part = np.maximum(part, -joint)
                    opening = side * cv.x[win] - np.float32(side * head[0] + 0.2 * head[2])
                    part = np.maximum(part, opening)
            elif ea == eb and not angle:
                part = cv.circle(win, cx, cy, ea)
            else:
                part = cv.ellipse(win, cx, cy, ea, eb, angle, bend)
            phi = part if phi is None else np.minimum(phi, part)
        # femur: thin subchondral cortex at the head, thick cortex down the shaft
        thickness = 2.0 + 3.5 * _smoothstep(z, 0.86, 1.0) if group.startswith("femur") else 2.2
        cv.paint(win, phi, cortical)
        cv.paint(win, phi + np.float32(thickness), cancellous)
        if group == "sacrum" and "sacrum" in bones and z < 0.45:
            cx, cy, ea, eb, _, _ = bones["sacrum"]
            canal = cv.ellipse(win, cx, cy + 0.45 * eb, 0.2 * ea + 2.0, 0.22 * eb + 1.0)
            cv.paint(win, canal, _tissue("csf"))
        for les in p.lesions:
            if host_of.get(les.host, les.host) != group:
                continue
            r = _sphere_radius(les.radius, z_mm - les.z_mm)
            if r > 0:
                phi_l = np.maximum(cv.circle(win, les.x, les.y, r), phi + np.float32(1.5))
                cv.paint(win, phi_l, lesion_v)


def _texture(seed: int, patient: int, z_mm: float, resolution: int, fov: float) -> np.ndarray:
    """Smooth unit-scale random texture ``[H, W]``: white noise on a fixed mm grid, bilinear in x, y and z.

    The grid is fixed in mm, so the texture is the same anatomy-scale pattern at every resolution and
    changes continuously along the body axis.
    """
    n = math.ceil(fov / _TEXTURE_MM) + 3
    t = z_mm / _TEXTURE_Z_MM
    k = math.floor(t)
    frac = np.float32(t - k)
    planes = [
        np.random.default_rng([seed, patient, _TEXTURE, plane]).standard_normal((n, n), dtype=np.float32)
        for plane in (k, k + 1)
    ]
    grid = (1 - frac) * planes[0] + frac * planes[1]
    pos = ((np.arange(resolution) + 0.5) * (fov / resolution)) / _TEXTURE_MM + 1.0
    i0 = pos.astype(np.int64)
    w = (pos - i0).astype(np.float32)
    rows = grid[i0] * (1 - w)[:, None] + grid[i0 + 1] * w[:, None]
    return rows[:, i0] * (1 - w)[None, :] + rows[:, i0 + 1] * w[None, :]


def _smooth_noise(noise: np.ndarray) -> np.ndarray:
    """``[1, 2, 1] / 4`` separable smoothing of white noise, rescaled to unit variance (CT-like grain)."""
    out = noise.copy()
    out[1:-1] = 0.25 * noise[:-2] + 0.5 * noise[1:-1] + 0.25 * noise[2:]
    out[:, 1:-1] = 0.25 * out[:, :-2] + 0.5 * out[:, 1:-1] + 0.25 * out[:, 2:]
    return out * np.float32(1.0 / 0.375)


def _bias_field(p: _Patient, resolution: int, fov: float, z_mm: float) -> np.ndarray:
    """Smooth multiplicative MRI bias ``[H, W]``, ``exp`` of a few long-wavelength sinusoids (0.82-1.22)."""
    q = (np.arange(resolution) + 0.5) * (fov / resolution) - fov / 2
    g = np.zeros((resolution, resolution), np.float32)
    for amp, wx, wy, wz, phase in p.bias:
        sa = (amp * np.sin(wx * q + phase + wz * z_mm)).astype(np.float32)
        ca = (amp * np.cos(wx * q + phase + wz * z_mm)).astype(np.float32)
        sb, cb = np.sin(wy * q).astype(np.float32), np.cos(wy * q).astype(np.float32)
        g += sa[None, :] * cb[:, None]
        g += ca[None, :] * sb[:, None]
    return np.exp(g)


def _render_slice(
    p: _Patient, seed: int, z: float, slice_index: int, resolution: int, fov: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CT (HU), MRI (T2 units) and lesion occupancy, each ``[H, W]`` float32."""
    cv = _Canvas(p, z, resolution, fov)
    _render_anatomy(cv, p, z)
    ct, mri, trab, lesion = cv.buf
    z_mm = z * p.height
    inside = np.clip((ct + np.float32(900.0)) * np.float32(1.0 / 700.0), 0.0, 1.0)  # not gas, not air
    coarse = _texture(seed, p.index, z_mm, resolution, fov)
    rng = np.random.default_rng([seed, p.index, _NOISE, slice_index, resolution])
    noise = rng.standard_normal((4, resolution, resolution), dtype=np.float32)
    # trabecular pattern: pixel-scale, averaged away (partial volume) as pixels grow past ~1.6 mm
    trabecular = (
        trab * _smooth_noise(_smooth_noise(noise[3])) * np.float32(min(1.0, 1.6 / (fov / resolution)))
    )
    ct = ct + inside * np.float32(5.0) * coarse + np.float32(45.0) * trabecular
    ct = ct + inside * np.float32(p.ct_sigma) * _smooth_noise(noise[0])
    ct = np.clip(ct, -1024.0, 3071.0)
    mri = mri * (np.float32(1.0) + np.float32(0.04) * coarse * inside) + np.float32(60.0) * trabecular
    mri = np.maximum(mri, 0.0) * _bias_field(p, resolution, fov, z_mm) * np.float32(p.mri_gain)
    sigma = np.float32(p.mri_sigma)
    mri = np.sqrt((mri + sigma * noise[1]) ** 2 + (sigma * noise[2]) ** 2)
    return ct.astype(np.float32), mri.astype(np.float32), np.clip(lesion, 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------------------------------------
# the dataset


def _copy(t: torch.Tensor) -> torch.Tensor:
    """A copy of a small CPU tensor made by NumPy (no wake-up of torch's intra-op thread pool)."""
    return torch.from_numpy(t.numpy().copy())


class PelvisPhantom(Dataset[dict[str, object]]):
    """Paired T2-weighted MRI and CT axial pelvis slices of a deterministic toy anatomy (map-style dataset).

    Item ``i`` is slice ``i % slices_per_patient`` of patient ``i // slices_per_patient``; slices are spaced
    evenly from the iliac crest (slice 0) to the proximal femora (last slice). Each item is a ``dict``
    following :mod:`latent_transforms.data.items`:

    - ``"mri"``: ``float32 [1, H, W]``, T2 scanner units, ``>= 0`` (about 0-2300; paper window 0-1900);
    - ``"ct"``: ``float32 [1, H, W]``, HU in ``[-1024, 3071]`` (air -1000 exactly outside the body);
    - ``"mask"``: ``float32 [1, H, W]`` in {0, 1}, :func:`~latent_transforms.data.items.body_mask` of the CT
      (so gas inside the body is outside the mask, as with real CT);
    - ``"patient"``: ``"phantom-007"``; ``"slice"``: ``int``; ``"key"``: ``"phantom-007/0012"``;
    - ``"label"``: ``int`` in {0, 1}, 1 when the patient has lesions;
    - ``"attribute"``: ``float`` in ``[0, 1]``, the patient's bone density.

    See the module docstring for the anatomy, the tissue table and what is and is not modelled. Images
    are ``resolution`` pixels square over ``field_of_view_mm``; anterior is up and the patient's right is
    on the image's left (radiological convention).

    Args:
        n_patients: number of patients (>= 1). Patient ``k`` is the same whatever ``n_patients`` is.
        slices_per_patient: axial slices per patient (>= 1), evenly spaced over the pelvis.
        resolution: image side in pixels, 16-512.
        seed: non-negative integer; everything random derives from it.
        modalities: which images an item holds, a non-empty subset of ``("mri", "ct")`` in any order.
        field_of_view_mm: side of the square field of view (100-1000 mm); the body is 280-360 mm wide.
        cache: keep generated items in a per-instance LRU cache (up to ~512 MiB); items are returned as
            copies, so changing one does not change the cache.

    Raises:
        ConfigError: an argument is out of range.

    Example:
        >>> ds = PelvisPhantom(n_patients=2, slices_per_patient=4, resolution=32, seed=0)
        >>> len(ds), ds.patients
        (8, ['phantom-000', 'phantom-001'])
        >>> item = ds[5]
        >>> item["key"], item["slice"], tuple(item["ct"].shape), item["ct"].dtype
        ('phantom-001/0001', 1, (1, 32, 32), torch.float32)
        >>> bool(item["ct"].min() >= -1024) and bool(item["mri"].min() >= 0)
        True
        >>> torch.equal(item["mask"], (item["ct"] > -500).float())
        True
        >>> again = PelvisPhantom(2, 4, 32, seed=0)[5]  # same arguments: bit-identical
        >>> torch.equal(again["mri"], item["mri"])
        True
    """

    def __init__(
        self,
        n_patients: int,
        slices_per_patient: int,
        resolution: int = 256,
        seed: int = 0,
        *,
        modalities: Sequence[str] = ("mri", "ct"),
        field_of_view_mm: float = 400.0,
        cache: bool = True,
    ) -> None:
        for name, value, low in (
            ("n_patients", n_patients, 1),
            ("slices_per_patient", slices_per_patient, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ConfigError(f"PelvisPhantom needs an integer {name} >= {low}; got {value!r}.")
        if (
            isinstance(resolution, bool)
            or not isinstance(resolution, (int, np.integer))
            or not _MIN_RESOLUTION <= resolution <= _MAX_RESOLUTION
        ):
            raise ConfigError(
                f"PelvisPhantom needs an integer resolution in [{_MIN_RESOLUTION}, {_MAX_RESOLUTION}]; "
                f"got {resolution!r}. Example: resolution=64."
            )
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ConfigError(f"PelvisPhantom needs a non-negative integer seed; got {seed!r}.")
        mods = (modalities,) if isinstance(modalities, str) else tuple(modalities)
        if not mods or len(set(mods)) != len(mods) or any(m not in ("mri", "ct") for m in mods):
            raise ConfigError(
                f"PelvisPhantom's modalities are a non-empty subset of ('mri', 'ct') without repeats; "
                f"got {modalities!r}."
            )
        fov = float(field_of_view_mm)
        if not 100.0 <= fov <= 1000.0:
            raise ConfigError(
                f"PelvisPhantom needs field_of_view_mm in [100, 1000]; got {field_of_view_mm!r}."
            )
        self.n_patients = int(n_patients)
        self.slices_per_patient = int(slices_per_patient)
        self.resolution = int(resolution)
        self.seed = int(seed)
        self.modalities = mods
        self.field_of_view_mm = fov
        self.cache = bool(cache)
        self._patients: dict[int, _Patient] = {}
        self._items: OrderedDict[int, tuple[dict[str, object], torch.Tensor]] = OrderedDict()
        self._cache_items = max(8, _CACHE_BYTES // (4 * 4 * self.resolution**2))

    # ---- bookkeeping ----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self.n_patients * self.slices_per_patient

    def __repr__(self) -> str:
        return (
            f"PelvisPhantom(n_patients={self.n_patients}, slices_per_patient={self.slices_per_patient}, "
            f"resolution={self.resolution}, seed={self.seed}, modalities={self.modalities!r}, "
            f"field_of_view_mm={self.field_of_view_mm}, cache={self.cache})"
        )

    @property
    def patients(self) -> list[str]:
        """Patient ids in order: ``["phantom-000", "phantom-001", ...]``."""
        return [self._patient_id(k) for k in range(self.n_patients)]

    @property
    def labels(self) -> list[int]:
        """Per-patient lesion labels in {0, 1}, in the order of :attr:`patients`."""
        return [self._patient(k).label for k in range(self.n_patients)]

    @property
    def attributes(self) -> list[float]:
        """Per-patient bone densities in ``[0, 1]``, in the order of :attr:`patients`."""
        return [self._patient(k).attribute for k in range(self.n_patients)]

    def patient_of(self, index: int) -> str:
        """Patient id of item ``index`` (negative indices count from the end).

        Example:
            >>> PelvisPhantom(3, 10, 32).patient_of(25)
            'phantom-002'
        """
        return self._patient_id(self._check_index(index) // self.slices_per_patient)

    def patient_info(self, patient: int | str) -> dict[str, object]:
        """Anatomy summary of one patient (index or id): sex, label, attribute, sizes, lesions.

        Returns:
            ``{"patient", "sex" ("M"/"F"), "label", "attribute", "body_width_mm", "body_depth_mm",
            "fat_mm", "bladder_filling" (0-1), "rectal_gas_pockets", "lesions"}`` where ``"lesions"``
            lists ``{"host", "slice_mm", "radius_mm"}`` (``slice_mm`` from the iliac crest).

        Example:
            >>> info = PelvisPhantom(4, 8, 32, seed=1).patient_info("phantom-003")
            >>> info["sex"] in ("M", "F"), info["label"] == int(len(info["lesions"]) > 0)
            (True, True)
        """
        p = self._patient(self._patient_number(patient))
        return {
            "patient": self._patient_id(p.index),
            "sex": p.sex,
            "label": p.label,
            "attribute": p.attribute,
            "body_width_mm": 2.0 * p.a0,
            "body_depth_mm": 2.0 * p.b0,
            "fat_mm": p.fat,
            "bladder_filling": p.bladder,
            "rectal_gas_pockets": len(p.gas),
            "lesions": [
                {"host": les.host, "slice_mm": les.z_mm, "radius_mm": les.radius} for les in p.lesions
            ],
        }

    # ---- items ----------------------------------------------------------------------------------------

    def __getitem__(self, index: int) -> dict[str, object]:
        item, _ = self._get(self._check_index(index))
        return {k: _copy(v) if isinstance(v, torch.Tensor) else v for k, v in item.items()}

    def lesion_mask(self, index: int) -> torch.Tensor:
        """Lesion occupancy of item ``index``: ``float32 [1, H, W]`` in ``[0, 1]`` (0 for label-0 patients).

        Example:
            >>> ds = PelvisPhantom(1, 4, 32)
            >>> ds.lesion_mask(0).shape
            torch.Size([1, 32, 32])
        """
        _, lesion = self._get(self._check_index(index))
        return _copy(lesion)

    def volume(self, patient: int | str) -> dict[str, torch.Tensor]:
        """All slices of one patient stacked along the body axis.

        Args:
            patient: index (``0 .. n_patients - 1``) or id (``"phantom-003"``).

        Returns:
            ``{modality: float32 [S, H, W], "mask": float32 [S, H, W]}`` with ``S = slices_per_patient``,
            slice 0 (iliac crest) first.

        Example:
            >>> vol = PelvisPhantom(2, 3, 16).volume("phantom-001")
            >>> {k: tuple(v.shape) for k, v in vol.items()}
            {'mri': (3, 16, 16), 'ct': (3, 16, 16), 'mask': (3, 16, 16)}
        """
        k = self._patient_number(patient)
        start = k * self.slices_per_patient
        items = [self._get(start + s)[0] for s in range(self.slices_per_patient)]
        return {
            name: torch.cat([cast(torch.Tensor, it[name]) for it in items])
            for name in (*self.modalities, "mask")
        }

    # ---- internals ------------------------------------------------------------------------------------

    @staticmethod
    def _patient_id(k: int) -> str:
        return f"phantom-{k:03d}"

    def _check_index(self, index: int) -> int:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"PelvisPhantom indices are integers; got {type(index).__name__}.")
        n = len(self)
        i = int(index) + n if index < 0 else int(index)
        if not 0 <= i < n:
            raise IndexError(f"index {index} out of range for a PelvisPhantom of {n} items.")
        return i

    def _patient_number(self, patient: int | str) -> int:
        if isinstance(patient, str):
            ids = {self._patient_id(k): k for k in range(self.n_patients)}
            if patient not in ids:
                raise ConfigError(
                    f"no patient {patient!r}; this phantom has {self._patient_id(0)} .. "
                    f"{self._patient_id(self.n_patients - 1)}."
                )
            return ids[patient]
        if isinstance(patient, bool) or not isinstance(patient, (int, np.integer)):
            raise TypeError(f"patient is an index or an id string; got {type(patient).__name__}.")
        if not 0 <= patient < self.n_patients:
            raise ConfigError(f"patient index must be in [0, {self.n_patients}); got {patient}.")
        return int(patient)

    def _patient(self, k: int) -> _Patient:
        if k not in self._patients:
            self._patients[k] = _draw_patient(self.seed, k)
        return self._patients[k]

    def _z(self, slice_index: int) -> float:
        return (slice_index + 0.5) / self.slices_per_patient

    def _get(self, i: int) -> tuple[dict[str, object], torch.Tensor]:
        if self.cache and i in self._items:
            self._items.move_to_end(i)
            return self._items[i]
        k, s = divmod(i, self.slices_per_patient)
        p = self._patient(k)
        ct, mri, lesion = _render_slice(p, self.seed, self._z(s), s, self.resolution, self.field_of_view_mm)
        images = {"mri": torch.from_numpy(mri)[None], "ct": torch.from_numpy(ct)[None]}
        patient = self._patient_id(k)
        item: dict[str, object] = {m: images[m] for m in self.modalities}
        item.update(
            # == items.body_mask(ct), computed in NumPy: torch's intra-op threads cost more than the work here
            mask=torch.from_numpy((ct > np.float32(BODY_THRESHOLD_HU)).astype(np.float32))[None],
            patient=patient,
            slice=s,
            key=item_key(patient, s),
            label=p.label,
            attribute=p.attribute,
        )
        entry = (item, torch.from_numpy(lesion)[None])
        if self.cache:
            self._items[i] = entry
            while len(self._items) > self._cache_items:
                self._items.popitem(last=False)
        return entry
