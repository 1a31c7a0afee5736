"""The anatomy of a phantom: every structure painted on a canvas with its exact label.

Craniocaudal positions are fractions of the height below the vertex (0 vertex, 1 sole), so
that one body plan serves every stature. In-plane sizes are millimetres for an average adult
and scale with the spec. Painting order matters: later structures overwrite earlier ones.

Some parts are painted under a name (``Canvas.parts``), because their label alone does not
say what they are: the muscles inside the body wall (``psoas``, ``crura``, ``iliacus``), the
``kidneys``, and the region ``thoracic_cavity`` (inside the trunk's cavity, above the
diaphragm's domes).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from habitus.labels import Tissue
from habitus.phantoms.canvas import Canvas, Mask, Profile, smooth_noise
from habitus.phantoms.materials import Material as M  # noqa: N817  (short for the many paints)
from habitus.phantoms.spec import PhantomSpec

F64 = NDArray[np.float64]
# A long bone of a limb: centre x and y, radius, marrow, and the named part it belongs to.
Bone = tuple[F64 | float, F64 | float, F64 | float, M, str | None]

BG, SKIN, BONE, MUSCLE = Tissue.BACKGROUND, Tissue.SKIN, Tissue.BONE, Tissue.MUSCLE
AVF, SF, IO, CNS = Tissue.AVF, Tissue.SF, Tissue.IO, Tissue.CNS

# Body plan: fractions of height below the vertex.
HEAD_END = 0.126
NECK_END = 0.152
TORSO_END = 0.515
PELVIC_FLOOR = 0.505
THIGH_START = 0.495
KNEE = 0.715
ANKLE = 0.945

# Vertebral coordinate: 0 at the top of C1, 7 at C7/T1, 19 at T12/L1, 24 at L5/S1.
VERTEBRA = Profile([0.088, 0.152, 0.335, 0.445], [0.0, 7.0, 19.0, 24.0])
VERTEBRA_INV = Profile([0.0, 7.0, 19.0, 24.0], [0.088, 0.152, 0.335, 0.445])

# Lean torso: semi-axes of the outer surface of the muscle wall (mm).
TORSO_F = [0.152, 0.168, 0.185, 0.205, 0.24, 0.28, 0.32, 0.36, 0.40, 0.43, 0.47, 0.50, 0.515]
TORSO_A = Profile(TORSO_F, [58, 100, 148, 150, 140, 134, 128, 122, 120, 130, 142, 136, 110])
TORSO_B = Profile(TORSO_F, [50, 62, 84, 92, 96, 94, 90, 85, 80, 82, 88, 86, 78])
SF_SHARE = Profile(
    [0.0, 0.13, 0.17, 0.22, 0.30, 0.36, 0.42, 0.48, 0.52, 0.7, 0.95],
    [0.15, 0.25, 0.35, 0.55, 0.75, 1.0, 1.0, 1.15, 1.1, 0.8, 0.35],
)
VISCERAL = Profile([0.27, 0.32, 0.42, 0.48, 0.52], [0.0, 1.0, 1.0, 0.6, 0.0])
WALL = Profile([0.152, 0.2, 0.28, 0.32, 0.42, 0.45, 0.5], [22, 20, 14, 12, 12, 30, 40])
BACK = Profile([0.152, 0.2, 0.3, 0.4, 0.45, 0.5], [55, 50, 52, 60, 70, 75])
VB_A = Profile([0.088, 0.152, 0.25, 0.335, 0.445], [15, 17, 19, 22, 25])
WING_FROM = 1.4  # radians from the front: where the iliac wings begin
DIAPHRAGM_MM = 4.0  # thickness of the diaphragm under its domes
KIDNEY_RIM_MM = 3.0  # perirenal fat behind and beside a kidney, at the least
RIB_HEAD_PHASE = 0.3  # where a rib head meets its vertebra: 0 top of the body, 1 its foot
RIB_DESCENT_MM = 36.0  # a rib's fall from its head to its angle (average adult)
RIB_ANGLE_MM = 50.0  # lateral reach of the rib's angle beyond the vertebral body
RIB_FROM_KIDNEY_MM = 3.0  # fat between a kidney and the rib behind it, at the least
BACK_BEHIND_KIDNEY_MM = 25.0  # quadratus lumborum and latissimus behind a kidney's fat
PSOAS_FAT_MM = 3.0  # the fat plane around the psoas
FEMORAL_HEAD_MM = 22.0  # radius of the femoral head (average adult)
JOINT_MM = 4.0  # hip joint space: the cartilage of head and acetabulum
CANAL_R = Profile([0.088, 0.152, 0.25, 0.335, 0.445, 0.49], [10, 8, 7, 8, 9, 5])


def _col(values: F64, ks: slice) -> F64:
    return values[ks][:, None, None]


class Body:
    """Paints one phantom body; call :meth:`paint` once."""

    def __init__(self, spec: PhantomSpec, canvas: Canvas, rng: np.random.Generator) -> None:
        self.spec = spec
        self.c = canvas
        self.rng = rng
        self.H = spec.height_mm
        self.W = (spec.height_mm / 1750.0) ** 0.6 * rng.uniform(0.92, 1.08)
        self.ms = spec.muscle_scale
        self.skin_t = float(rng.uniform(1.5, 2.6))
        self.sf_t = spec.sf_thickness_mm * (1.25 if spec.sex == "F" else 1.0)
        self.dome_apex = (
            float(rng.uniform(0.255, 0.285)),  # right (liver side) is higher
            float(rng.uniform(0.265, 0.295)),
        )
        self.arm_gap = float(rng.uniform(3.0, 40.0))
        self._torso_rows()

    # --- shared geometry ----------------------------------------------------------------------
    def _torso_rows(self) -> None:
        """Per-row torso geometry (arrays over all canvas rows)."""
        f = self.c.u / self.H
        W, ms, s = self.W, self.ms, self.spec
        ve = s.visceral_level * VISCERAL(f)
        a_m = TORSO_A(f) * W * ms**0.25 + 32.0 * ve
        b_m = TORSO_B(f) * W * ms**0.2 + 34.0 * ve
        sf = self.sf_t * SF_SHARE(f)
        sf_ant = sf * (1.0 + 0.4 * s.fat_level)
        sf_post = sf * 0.8
        b_b = b_m + 0.5 * (sf_ant + sf_post) + self.skin_t
        a_b = a_m + sf + self.skin_t
        cy_b = -b_b  # the back rests on the table at y = 0
        cy_m = cy_b + 0.5 * (sf_post - sf_ant)
        wall = WALL(f) * ms
        back = BACK(f) * ms**0.5
        ant = cy_m - b_m + wall
        post = cy_m + b_m - back
        self.a_m, self.b_m, self.cy_m = a_m, b_m, cy_m
        self.a_b, self.b_b, self.cy_b = a_b, b_b, cy_b
        self.a_c = np.maximum(a_m - wall * 1.1, 10.0)
        self.b_c = np.maximum(0.5 * (post - ant), 10.0)
        self.cy_c = 0.5 * (post + ant)
        self.v = VERTEBRA(f)
        self.a_vb = VB_A(f) * W
        self.b_vb = 0.78 * self.a_vb
        self.y_vb = post + 0.45 * self.b_vb
        self.r_can = CANAL_R(f) * W
        self.y_can = self.y_vb + self.b_vb + self.r_can + 2.0

    def f_of_vertebra(self, v: float) -> float:
        return float(VERTEBRA_INV(np.asarray(v)))

    def dome_u(self, ks: slice) -> F64:
        """Depth (mm) of the diaphragm surface under each voxel of rows ``ks``."""
        X, Y = self.c.xy(ks)
        cx = 0.0
        rn2 = ((X - cx) / _col(self.a_c, ks)) ** 2 + (
            (Y - _col(self.cy_c, ks)) / _col(self.b_c, ks)
        ) ** 2
        apex = np.where(X < 0, self.dome_apex[0], self.dome_apex[1]) * self.H
        posterior = np.clip((Y - _col(self.cy_c, ks)) / _col(self.b_c, ks), 0.0, 1.0)
        return np.asarray(apex + (0.045 * rn2 + 0.02 * posterior) * self.H, dtype=np.float64)

    # --- the whole body -----------------------------------------------------------------------
    def paint(self) -> None:
        self.head()
        self.neck()
        self.torso()
        self.legs()
        self.arms()
        self.marbling()

    # --- head and neck ------------------------------------------------------------------------
    def head(self) -> None:
        c, H = self.c, self.H
        ks = c.rows(0.0, HEAD_END)
        if ks.start >= ks.stop:
            return
        f = c.frac(ks)
        W = self.W
        a = Profile([0.0, 0.01, 0.03, 0.06, 0.09, 0.11, 0.126], [25, 50, 70, 76, 70, 60, 48])(f) * W
        b = (
            Profile([0.0, 0.01, 0.03, 0.06, 0.09, 0.11, 0.126], [35, 65, 92, 100, 95, 80, 62])(f)
            * W
        )
        fat = 3.0 + 0.15 * self.sf_t
        cy = -(100.0 * W) - 25.0  # resting on the head holder
        cyf = cy + Profile([0.0, 0.09, 0.126], [0, 8, 25])(f) * W  # the face recedes below
        c.paint(ks, c.ellipse(ks, 0.0, cyf, a, b), SKIN, M.SKIN)
        c.paint(ks, c.ellipse(ks, 0.0, cyf, a - self.skin_t, b - self.skin_t), SF, M.FAT)
        inner = c.ellipse(ks, 0.0, cyf, a - self.skin_t - fat, b - self.skin_t - fat)
        c.paint(ks, inner, MUSCLE, M.MUSCLE)
        # Skull vault and brain; cerebellum behind and below.
        u0 = 0.047 * H
        rb = (0.047 * H, 88.0 * W, 64.0 * W)
        for cu, ycen, radii in [
            (u0, cy + 4.0, rb),
            (0.076 * H, cy + 30.0 * W, (0.02 * H, 42.0 * W, 50.0 * W)),
        ]:
            bone = tuple(r + 7.0 for r in radii)
            ks2, m = c.ellipsoid((cu, ycen, 0.0), bone)  # type: ignore[arg-type]
            c.paint(ks2, m, BONE, M.CORTICAL)
        for cu, ycen, radii in [
            (u0, cy + 4.0, rb),
            (0.076 * H, cy + 30.0 * W, (0.02 * H, 42.0 * W, 50.0 * W)),
        ]:
            ks2, m = c.ellipsoid((cu, ycen, 0.0), radii)
            c.paint(ks2, m, CNS, M.CSF)
            inner_r = (radii[0] - 3.0, radii[1] - 3.0, radii[2] - 3.0)
            ks2, m = c.ellipsoid((cu, ycen, 0.0), inner_r)
            c.paint(ks2, m, CNS, M.BRAIN)
        # Orbits and eyes, sinuses and nasal airway, maxilla and mandible.
        ye = cy - 100.0 * W + 30.0
        for side in (-1.0, 1.0):
            ks2, m = c.ellipsoid((0.058 * H, ye + 4.0, side * 32.0 * W), (20.0, 20.0, 18.0))
            c.paint(ks2, m, SF, M.FAT)
            ks2, m = c.ellipsoid((0.058 * H, ye, side * 32.0 * W), (12.0, 12.0, 12.0))
            c.paint(ks2, m, CNS, M.EYE)
            ks2, m = c.ellipsoid((0.082 * H, ye + 22.0, side * 24.0 * W), (14.0, 17.0, 13.0))
            c.paint(ks2, m, BG, M.AIR)
        ks2 = c.rows(0.07, 0.1)
        if ks2.start < ks2.stop:
            b2 = Profile([0.0, 0.1, 0.126], [100, 95, 80])(c.frac(ks2)) * W
            cy2 = cy + Profile([0.0, 0.09, 0.126], [0, 8, 25])(c.frac(ks2)) * W
            ring = c.ellipse(ks2, 0.0, cy2, 58.0 * W, b2 - 8.0) & ~c.ellipse(
                ks2, 0.0, cy2, 50.0 * W, b2 - 16.0
            )
            front = c.xy(ks2)[1] < cy2 - 0.3 * b2
            c.paint(ks2, ring & front, BONE, M.CORTICAL)
            nasal = c.ellipse(ks2, 0.0, cy2 - b2 + 40.0, 7.0, 28.0)
            c.paint(ks2, nasal, BG, M.AIR)
        ks2 = c.rows(0.098, HEAD_END)
        if ks2.start < ks2.stop:
            f2 = c.frac(ks2)
            a2 = Profile([0.098, 0.126], [58, 44])(f2) * W
            b2 = Profile([0.098, 0.126], [80, 60])(f2) * W
            cy2 = cy + Profile([0.0, 0.09, 0.126], [0, 8, 25])(f2) * W - 6.0
            ring = c.ellipse(ks2, 0.0, cy2, a2, b2) & ~c.ellipse(ks2, 0.0, cy2, a2 - 8.0, b2 - 8.0)
            ang = np.abs(c.angle(ks2, 0.0, cy2))
            c.paint(ks2, ring & (ang < 1.9), BONE, M.CORTICAL)
            pharynx = c.ellipse(ks2, 0.0, cy2 + 0.25 * b2, 9.0, 7.0)
            c.paint(ks2, pharynx, BG, M.AIR)
        # Upper cervical spine behind the pharynx.
        ks2 = c.rows(0.088, HEAD_END)
        if ks2.start < ks2.stop:
            f2 = c.u[ks2] / H
            b2 = Profile([0.0, 0.1, 0.126], [100, 95, 80])(f2) * W
            cy2 = cy + Profile([0.0, 0.09, 0.126], [0, 8, 25])(f2) * W
            self.y_vb[ks2] = cy2 + 0.25 * b2 + 9.0 + 6.0 + self.b_vb[ks2]
            self.y_can[ks2] = self.y_vb[ks2] + self.b_vb[ks2] + self.r_can[ks2] + 2.0
            self.spine(ks2)

    def neck(self) -> None:
        c = self.c
        ks = c.rows(HEAD_END, NECK_END)
        if ks.start >= ks.stop:
            return
        f = c.frac(ks)
        W = self.W
        r = Profile([HEAD_END, 0.14, NECK_END], [52, 50, 56])(f) * W * self.ms**0.3
        sf = 2.0 + self.sf_t * SF_SHARE(f)
        a = r * 1.12 + sf + self.skin_t
        b = r + sf + self.skin_t
        cy = -b - 25.0 * Profile([HEAD_END, NECK_END], [1.0, 0.0])(f)
        c.paint(ks, c.ellipse(ks, 0.0, cy, a, b), SKIN, M.SKIN)
        c.paint(ks, c.ellipse(ks, 0.0, cy, a - self.skin_t, b - self.skin_t), SF, M.FAT)
        c.paint(ks, c.ellipse(ks, 0.0, cy, r * 1.12, r), MUSCLE, M.MUSCLE)
        ya = cy - 0.45 * r  # airway
        c.paint(ks, c.ellipse(ks, 0.0, ya + 14.0, 8.0, 6.0), IO, M.SOFT)  # oesophagus
        larynx = c.rows(HEAD_END, 0.14)
        if larynx.start < larynx.stop:
            ya_l = ya[larynx.start - ks.start : larynx.stop - ks.start]
            ring = c.ellipse(larynx, 0.0, ya_l, 17.0, 15.0) & ~c.ellipse(
                larynx, 0.0, ya_l, 13.0, 11.0
            )
            front = c.xy(larynx)[1] < ya_l + 4.0
            c.paint(larynx, ring & front, BONE, M.CARTILAGE)
        thyroid = c.rows(0.14, NECK_END)
        if thyroid.start < thyroid.stop:
            ya_t = ya[thyroid.start - ks.start : thyroid.stop - ks.start]
            for side in (-1.0, 1.0):
                c.paint(
                    thyroid, c.ellipse(thyroid, side * 16.0, ya_t + 2.0, 10.0, 13.0), IO, M.GLAND
                )
        # Carotids and jugulars: organs and vessels below the upper thyroid, muscle above.
        vessel_label = np.where(f >= 0.14, int(IO), int(MUSCLE))
        for side in (-1.0, 1.0):
            for dx, rr in ((26.0, 4.5), (36.0, 6.5)):
                m = c.ellipse(ks, side * dx * W, ya + 8.0, rr, rr)
                c.labels[ks][m] = np.broadcast_to(vessel_label, m.shape)[m]
                c.material[ks][m] = M.BLOOD
        c.paint(ks, c.ellipse(ks, 0.0, ya, 8.0, 7.0), BG, M.AIR)
        # The cervical spine sits behind the oesophagus.
        self.y_vb[ks] = (ya + 14.0 + 8.0 + self.b_vb[ks][:, None, None]).ravel()
        self.y_can[ks] = self.y_vb[ks] + self.b_vb[ks] + self.r_can[ks] + 2.0
        self.spine(ks)

    # --- spine --------------------------------------------------------------------------------
    def spine(self, ks: slice) -> None:
        """Vertebral bodies, discs, arches and processes, canal with cord (CNS)."""
        c = self.c
        if ks.start >= ks.stop:
            return
        v = _col(self.v, ks)
        a, b = _col(self.a_vb, ks), _col(self.b_vb, ks)
        y_vb, y_can, r_can = _col(self.y_vb, ks), _col(self.y_can, ks), _col(self.r_can, ks)
        phase = v - np.floor(v)
        disc_share = np.where(v > 19.0, 0.24, np.where(v > 7.0, 0.17, 0.15))
        is_disc = (phase > 1.0 - disc_share) & (v > 1.0)
        present = (v >= 0.0) & (v < 24.0)
        body = c.ellipse(ks, 0.0, y_vb, a, b) & present
        c.paint(ks, body & ~is_disc, BONE, M.CORTICAL)
        c.paint(
            ks, c.ellipse(ks, 0.0, y_vb, a - 2.5, b - 2.5) & present & ~is_disc, BONE, M.RED_MARROW
        )
        # Discs are fibrocartilage in the soft-tissue range; they count as muscle here.
        c.paint(ks, body & is_disc, MUSCLE, M.DISC)
        X, Y = c.xy(ks)
        arch_level = present & (phase > 0.1) & (phase < 0.85)
        arch = c.ellipse(ks, 0.0, y_can, r_can + 5.0, r_can + 4.5) & arch_level
        spinous = (np.abs(X) < 4.0) & (y_can < Y) & (y_can + r_can + 28.0 > Y) & arch_level
        transverse = (
            (np.abs(X) < a + 16.0) & (np.abs(Y - y_can + 2.0) < 4.5) & arch_level & (phase < 0.6)
        )
        c.paint(ks, arch | spinous | transverse, BONE, M.RIB)
        canal = c.ellipse(ks, 0.0, y_can, r_can, r_can * 0.9) & present
        c.paint(ks, canal, CNS, M.CSF)
        cord = c.ellipse(ks, 0.0, y_can, r_can * 0.55, r_can * 0.45) & (v < 20.0)
        c.paint(ks, cord, CNS, M.BRAIN)

    # --- torso --------------------------------------------------------------------------------
    def torso(self) -> None:
        c = self.c
        ks = c.rows(NECK_END, TORSO_END)
        if ks.start >= ks.stop:
            return
        a_b, b_b, cy_b = _col(self.a_b, ks), _col(self.b_b, ks), _col(self.cy_b, ks)
        a_m, b_m, cy_m = _col(self.a_m, ks), _col(self.b_m, ks), _col(self.cy_m, ks)
        t = self.skin_t
        c.paint(ks, c.ellipse(ks, 0.0, cy_b, a_b, b_b, power=2.3), SKIN, M.SKIN)
        c.paint(ks, c.ellipse(ks, 0.0, cy_b, a_b - t, b_b - t, power=2.3), SF, M.FAT)
        if self.spec.sex == "F":
            self.breasts()
        c.paint(ks, c.ellipse(ks, 0.0, cy_m, a_m, b_m, power=2.3), MUSCLE, M.MUSCLE)
        self.cavity()
        self.ribs()
        self.pelvis()
        self.spine(ks)

    def breasts(self) -> None:
        c, H = self.c, self.H
        k = c.rows(0.2, 0.2)
        row = min(k.start, len(self.a_m) - 1)
        size = 1.0 + self.spec.fat_level
        for side in (-1.0, 1.0):
            center = (0.235 * H, float(self.cy_m[row] - self.b_m[row]) - 5.0, side * 60.0 * self.W)
            ks, m = c.ellipsoid(center, (0.03 * H * size, 28.0 * size, 45.0 * size))
            c.paint_where(ks, m, SF, M.FAT, only_labels=[SKIN, SF, MUSCLE])
            ks, m = c.ellipsoid(center, (0.018 * H * size, 15.0 * size, 28.0 * size))
            c.paint_where(ks, m, IO, M.SOFT, only_labels=[SF])

    def cavity(self) -> None:
        """Thoracic cavity above the diaphragm, abdominal and pelvic cavity below."""
        c, H = self.c, self.H
        ks = c.rows(0.168, PELVIC_FLOOR)
        if ks.start >= ks.stop:
            return
        a_c, b_c, cy_c = _col(self.a_c, ks), _col(self.b_c, ks), _col(self.cy_c, ks)
        U = c.u[ks][:, None, None]
        inside = c.ellipse(ks, 0.0, cy_c, a_c, b_c, power=2.2)
        dome = self.dome_u(ks)
        thorax = inside & (dome > U)
        abdomen = inside & (dome + DIAPHRAGM_MM <= U)
        c.paint(ks, thorax, BG, M.LUNG)
        c.mark("thoracic_cavity", ks, thorax)
        diaphragm = inside & (dome <= U) & (dome + DIAPHRAGM_MM > U)
        c.paint(ks, diaphragm, MUSCLE, M.MUSCLE)
        c.paint(ks, abdomen, AVF, M.FAT)
        self.mediastinum()
        self.abdomen(ks, abdomen)
        self.vessels()
        self.lung_texture(ks, thorax)
        _ = H

    def lung_texture(self, ks: slice, thorax: Mask) -> None:
        """Pulmonary vessels: bright dots inside the lungs, still labelled as lung."""
        c = self.c
        lung = thorax & (c.labels[ks] == BG) & (c.material[ks] == M.LUNG)
        n = smooth_noise(
            lung.shape, (6.0 / c.spacing[0], 6.0 / c.spacing[1], 6.0 / c.spacing[2]), self.rng
        )
        c.material[ks][lung & (n > 1.5)] = M.BLOOD

    def mediastinum(self) -> None:
        c, H, W = self.c, self.H, self.W
        ks = c.rows(0.168, max(self.dome_apex) + 0.01)
        if ks.start >= ks.stop:
            return
        f = c.frac(ks)
        U = c.u[ks][:, None, None]
        cy_c, b_c = _col(self.cy_c, ks), _col(self.b_c, ks)
        y_front = _col(self.y_vb, ks) - _col(self.b_vb, ks)
        width = Profile([0.168, 0.2, 0.23, 0.26, 0.3], [22, 28, 38, 55, 50])(f) * W
        med = c.ellipse(
            ks,
            8.0,
            0.5 * (cy_c - b_c + y_front),
            width,
            0.5 * (y_front - cy_c + b_c) + 6.0,
            power=3.0,
        )
        med &= self.dome_u(ks) > U
        c.paint_where(ks, med, SF, M.FAT, only_labels=[BG])
        # Heart in its pericardial fat.
        center = (0.255 * H, float(np.mean(cy_c)) - 12.0, 22.0 * W)
        radii = (0.035 * H, 52.0 * W, 62.0 * W)
        ks2, m = c.ellipsoid(center, tuple(r + 5.0 for r in radii))  # type: ignore[arg-type]
        c.paint_where(
            ks2, m & (c.u[ks2][:, None, None] < self.dome_u(ks2) + 8.0), SF, M.FAT, [BG, SF, AVF]
        )
        ks2, m = c.ellipsoid(center, radii)
        c.paint_where(
            ks2,
            m & (c.u[ks2][:, None, None] < self.dome_u(ks2) + 4.0),
            IO,
            M.HEART,
            [BG, SF, AVF, MUSCLE],
        )
        # Trachea down to the carina, oesophagus down to the hiatus.
        trachea = c.rows(0.168, 0.205)
        if trachea.start < trachea.stop:
            yt = _col(self.y_vb, trachea) - _col(self.b_vb, trachea) - 24.0
            c.paint(trachea, c.ellipse(trachea, 0.0, yt + 14.0, 8.0, 6.0), IO, M.SOFT)
            c.paint(trachea, c.ellipse(trachea, 0.0, yt, 9.0, 8.0), BG, M.AIR)
        oes = c.rows(0.205, 0.3)
        if oes.start < oes.stop:
            yo = _col(self.y_vb, oes) - _col(self.b_vb, oes) - 8.0
            c.paint(oes, c.ellipse(oes, 6.0, yo, 7.0, 6.0), IO, M.SOFT)

    def vessels(self) -> None:
        """Aorta (arch, descending, iliacs) and the venae cavae."""
        c, W = self.c, self.W
        f_bif = self.f_of_vertebra(22.5)
        ks = c.rows(0.19, f_bif)
        if ks.start < ks.stop:
            f = c.frac(ks)
            r = Profile([0.19, 0.3, f_bif], [13, 11, 9])(f) * W
            y = _col(self.y_vb, ks) - _col(self.b_vb, ks) - r - 2.0
            x = _col(self.a_vb, ks) * 0.6
            c.paint(ks, c.ellipse(ks, x, y, r, r), IO, M.BLOOD)
        ks = c.rows(0.195, 0.235)
        if ks.start < ks.stop:
            y = _col(self.cy_c, ks) - 0.35 * _col(self.b_c, ks)
            c.paint_where(ks, c.ellipse(ks, 8.0, y, 14.0 * W, 14.0 * W), IO, M.BLOOD, [BG, SF])
            c.paint_where(
                ks, c.ellipse(ks, -28.0, y + 6.0, 10.0 * W, 10.0 * W), IO, M.BLOOD, [BG, SF]
            )
        ks = c.rows(f_bif, 0.49)
        if ks.start < ks.stop:
            f = c.frac(ks)
            spread = Profile([f_bif, 0.49], [8, 55])(f) * W
            y = _col(self.y_vb, ks) - _col(self.b_vb, ks) - 8.0 - Profile([f_bif, 0.49], [0, 20])(f)
            for side in (-1.0, 1.0):
                # In the fat beside the psoas, not inside it (they once cut into it).
                c.paint_where(ks, c.ellipse(ks, side * spread, y, 7.0, 7.0), IO, M.BLOOD, [AVF, IO])
                c.paint_where(
                    ks,
                    c.ellipse(ks, side * (spread + 10.0), y + 8.0, 8.0, 7.0),
                    IO,
                    M.BLOOD,
                    [AVF, IO],
                )
        ks = c.rows(max(self.dome_apex) + 0.01, self.f_of_vertebra(23.5))
        if ks.start < ks.stop:
            y = _col(self.y_vb, ks) - _col(self.b_vb, ks) - 10.0
            c.paint(
                ks, c.ellipse(ks, -_col(self.a_vb, ks) * 0.9, y, 13.0 * W, 9.0 * W), IO, M.BLOOD
            )

    def abdomen(self, ks: slice, abdomen: Mask) -> None:
        """Bowel, solid organs and retroperitoneal organs inside the abdominal cavity."""
        c, H, W, rng = self.c, self.H, self.W, self.rng
        s = self.spec
        sp = c.spacing
        # Bowel loops: a smooth field thresholded to the share the visceral fat leaves free.
        loops = smooth_noise(abdomen.shape, (32.0 / sp[0], 32.0 / sp[1], 32.0 / sp[2]), rng)
        gas = smooth_noise(abdomen.shape, (18.0 / sp[0], 18.0 / sp[1], 18.0 / sp[2]), rng)
        share = float(np.clip(0.78 - 0.5 * s.visceral_level, 0.2, 0.8))
        values = loops[abdomen]
        if values.size:
            level = float(np.quantile(values[:: max(1, values.size // 20000)], 1.0 - share))
            bowel = abdomen & (loops > level) & (c.frac(ks) > self.dome_apex[1] + 0.04)
            c.paint(ks, bowel, IO, M.BOWEL)
            gas_level = float(rng.uniform(0.6, 1.4))
            c.paint(ks, bowel & (gas > gas_level), IO, M.GAS)
        dr, dl = self.dome_apex[0] * H, self.dome_apex[1] * H
        row = min(c.rows(0.33, 0.33).start, len(self.a_c) - 1)
        a_c, b_c, cy_c = float(self.a_c[row]), float(self.b_c[row]), float(self.cy_c[row])
        liver_size = rng.uniform(0.85, 1.15)
        organs: list[tuple[tuple[float, float, float], tuple[float, float, float], M, int]] = [
            (
                (dr + 0.05 * H, cy_c + 0.1 * b_c, -0.38 * a_c),
                (0.06 * H * liver_size, 0.85 * b_c, 0.72 * a_c),
                M.LIVER,
                IO,
            ),
            (
                (dr + 0.03 * H, cy_c - 0.35 * b_c, 0.1 * a_c),
                (0.03 * H, 0.5 * b_c, 0.45 * a_c),
                M.LIVER,
                IO,
            ),
            (
                (dl + 0.035 * H, cy_c + 0.55 * b_c, 0.68 * a_c),
                (0.035 * H, 0.35 * b_c, 0.3 * a_c),
                M.SPLEEN,
                IO,
            ),
            (
                (dl + 0.04 * H, cy_c - 0.15 * b_c, 0.38 * a_c),
                (0.04 * H, 0.45 * b_c, 0.35 * a_c),
                M.BOWEL,
                IO,
            ),
            ((dr + 0.09 * H, cy_c - 0.45 * b_c, -0.3 * a_c), (0.015 * H, 14.0, 14.0), M.URINE, IO),
        ]
        for center, radii, material, label in organs:
            # Organs only displace abdominal content below the diaphragm: the lungs, the
            # heart and the wall stay (the liver once reached over the heart above the dome).
            ks2, m = c.ellipsoid(center, radii)
            below = c.u[ks2][:, None, None] >= self.dome_u(ks2) + DIAPHRAGM_MM
            c.paint_where(ks2, m & below, label, material, [AVF, IO])
        # Gas cap of the stomach, anterior (supine).
        st_center = (dl + 0.04 * H, cy_c - 0.15 * b_c, 0.38 * a_c)
        ks2, m = c.ellipsoid(st_center, (0.04 * H, 0.45 * b_c, 0.35 * a_c))
        if ks2.start < ks2.stop:
            cap = m & (c.xy(ks2)[1] < st_center[1] - 0.2 * b_c) & (c.material[ks2] == M.BOWEL)
            c.paint(ks2, cap, IO, M.GAS)
        # Pancreas across the spine at L1-L2.
        fp = self.f_of_vertebra(19.6)
        rp = min(c.rows(fp, fp).start, len(self.y_vb) - 1)
        yp = float(self.y_vb[rp] - self.b_vb[rp]) - 32.0
        ks2, m = c.ellipsoid((fp * H, yp, 20.0 * W), (0.012 * H, 12.0, 55.0 * W))
        c.paint_where(ks2, m, IO, M.SOFT, [AVF, IO])
        # Psoas from L1 to the groin: beside the vertebral body and in front of the
        # transverse processes, in a gutter of its own with a fat plane between it and the
        # back muscles, the quadratus lumborum and the bowel (it was once painted over the
        # back muscles, half of it inside the erector spinae, and straight onto the bowel).
        ks2 = c.rows(self.f_of_vertebra(19.0), 0.5)
        if ks2.start < ks2.stop:
            f = c.frac(ks2)
            f5 = self.f_of_vertebra(24.0)
            r = (
                Profile(
                    [self.f_of_vertebra(19.0), self.f_of_vertebra(21.5), f5, 0.5], [9, 18, 24, 18]
                )(f)
                * W
                * self.ms**0.6
            )
            shift = Profile([f5, 0.5], [0.0, 35.0])(f)
            x = _col(self.a_vb, ks2) + r + shift * 0.8
            y = _col(self.y_vb, ks2) - shift
            # The front of the transverse processes (see spine()).
            processes = _col(self.y_can, ks2) - 6.5
            in_front = c.xy(ks2)[1] < processes - 1.0
            plane = PSOAS_FAT_MM
            for side in (-1.0, 1.0):
                gutter = c.ellipse(ks2, side * x, y, r + plane, r * 1.1 + plane) & in_front
                c.paint_where(ks2, gutter, AVF, M.FAT, [MUSCLE, AVF, IO])
                psoas = c.ellipse(ks2, side * x, y, r, r * 1.1) & in_front
                c.paint_where(ks2, psoas, MUSCLE, M.MUSCLE, [AVF, IO], part="psoas")
        # Kidneys lateral to the psoas at L1-L3, their backs at about the depth of the
        # transverse processes, each wrapped whole in its perirenal fat (Gerota's fascia).
        # The fat fills the renal fossa in front of the quadratus lumborum: it displaces the
        # cavity's content and the wall's muscle in front of the last BACK_BEHIND_KIDNEY_MM of
        # the back, never the psoas (it was once painted over the back muscles and the psoas
        # down to the subcutaneous fat). The kidney fills that fat but a rim of it, so no
        # kidney touches muscle.
        back = self.ms**0.5 * BACK_BEHIND_KIDNEY_MM
        for side, drop in ((-1.0, 0.012), (1.0, 0.0)):
            fk = self.f_of_vertebra(20.0) + drop
            rk = min(c.rows(fk, fk).start, len(self.y_vb) - 1)
            radii = (0.034 * H, 26.0 * W, 32.0 * W)
            x = side * (float(self.a_vb[rk]) + 52.0 * W)
            a_f, b_f = float(self.a_m[rk]) - back, float(self.b_m[rk]) - back
            across = min(abs(x) / a_f, 0.95)
            fossa_back = float(self.cy_m[rk]) + b_f * (1.0 - across**2.3) ** (1.0 / 2.3)
            y_k = min(float(self.y_vb[rk]) - 5.0, float(fossa_back - radii[1] - KIDNEY_RIM_MM))
            center = (fk * H, y_k, x)
            fat = 6.0 + 12.0 * s.visceral_level
            ks2, m = c.ellipsoid(center, tuple(r + fat for r in radii))  # type: ignore[arg-type]
            fossa = c.ellipse(ks2, 0.0, _col(self.cy_m, ks2), a_f, _col(self.b_m, ks2) - back, 2.3)
            psoas = c.parts["psoas"][ks2] if "psoas" in c.parts else np.zeros_like(m)
            block = c.labels[ks2]
            wall = (block == MUSCLE) & fossa & ~psoas
            c.paint(ks2, m & (wall | (block == AVF) | (block == IO)), AVF, M.FAT)
            self._kidney(ks2, center, radii)
        # Crura of the diaphragm beside the aorta.
        ks2 = c.rows(min(self.dome_apex) + 0.02, self.f_of_vertebra(19.5))
        if ks2.start < ks2.stop:
            y = _col(self.y_vb, ks2) - _col(self.b_vb, ks2) - 6.0
            for side in (-1.0, 1.0):
                crus = c.ellipse(ks2, side * 16.0, y, 5.0, 10.0)
                c.paint_where(ks2, crus, MUSCLE, M.MUSCLE, [AVF, IO], part="crura")
        _ = ks

    def _kidney(
        self, fat_rows: slice, center: tuple[float, float, float], radii: tuple[float, ...]
    ) -> None:
        """A kidney inside its fat (rows ``fat_rows``), KIDNEY_RIM_MM from the fat's edge in
        the slice at least (a voxel where pixels are coarser), and its sinus fat."""
        c, H, W = self.c, self.H, self.W
        side = float(np.sign(center[2]))
        pixel = min(c.spacing[1], c.spacing[2])
        rim = max(1, int(np.ceil(KIDNEY_RIM_MM / pixel)))
        cross = ndimage.generate_binary_structure(2, 1)[None]
        fat = c.labels[fat_rows] == AVF
        room = ndimage.binary_erosion(fat, cross, iterations=rim)
        ks, m = c.ellipsoid(center, radii)  # type: ignore[arg-type]
        m &= room[ks.start - fat_rows.start : ks.stop - fat_rows.start]
        c.paint_where(ks, m, IO, M.KIDNEY, [AVF], part="kidneys")
        sinus = (center[0], center[1] - 4.0, center[2] - side * 14.0 * W)
        ks, m = c.ellipsoid(sinus, (0.015 * H, 9.0, 9.0))
        c.paint_where(ks, m, AVF, M.FAT, [IO])

    def ribs(self) -> None:
        """Twelve pairs of ribs sloping down to the front, costal cartilage, sternum, scapulae."""
        c, H, W = self.c, self.H, self.W
        ks = c.rows(0.16, 0.40)
        if ks.start >= ks.stop:
            return
        a_c, b_c, cy_c = _col(self.a_c, ks), _col(self.b_c, ks), _col(self.cy_c, ks)
        t = 9.0 * W
        outer = c.ellipse(ks, 0.0, cy_c, a_c + t, b_c + t, power=2.2)
        inner = c.ellipse(ks, 0.0, cy_c, a_c, b_c, power=2.2)
        ring = outer & ~inner
        theta = c.angle(ks, 0.0, cy_c)
        g = 0.5 * (1.0 + np.cos(theta))  # 0 at the back, 1 at the front
        level_mm = (0.335 - 0.152) * H / 12.0
        # Each rib's head sits on the upper part of its vertebra's body (RIB_HEAD_PHASE);
        # from there the rib runs down and out, RIB_DESCENT_MM to its angle (steepest by the
        # spine), then on round the wall to the front, which stays where it was (the ribs
        # once ran level from the spine to their angle, their heads at mid-body).
        X, Y = c.xy(ks)
        a_vb = _col(self.a_vb, ks)
        out = np.where(cy_c < Y, np.abs(X), a_c + t) - a_vb  # lateral reach from the body
        reach = np.clip(out / RIB_ANGLE_MM, 0.0, 1.0)
        descent = RIB_DESCENT_MM * W * (1.0 - (1.0 - reach) ** 2)
        drop = 0.055 * H - RIB_DESCENT_MM * W + (0.5 - RIB_HEAD_PHASE) * level_mm
        f_adj = (c.u[ks][:, None, None] - descent - drop * g) / H
        v = VERTEBRA(np.asarray(f_adj, dtype=np.float64))
        w = v - 6.0 - RIB_HEAD_PHASE  # rib k's head lies at w = k
        rib = np.floor(w + 0.5)  # index of the rib whose band this voxel is in
        half = 5.5 * W
        on_rib = (np.abs(w - rib) * level_mm < half) & (rib >= 1) & (rib <= 12)
        ang = np.abs(theta)
        near_spine = (np.abs(X) < a_vb + 14.0) & (cy_c < Y)
        cart_end = np.where(rib <= 7, 0.12, np.where(rib <= 10, 0.5, 9.0))
        bone_end = np.where(rib <= 7, 0.45, np.where(rib <= 10, 0.9, 1.8))
        is_bone = on_rib & ring & (ang >= bone_end) & ~near_spine
        is_cart = on_rib & ring & (ang >= cart_end) & (ang < bone_end)
        # The kidneys' fossae and the psoas's gutter (their fat, labelled visceral) lie in
        # front of the ribs: no intercostal muscle is painted over them (it once was, and
        # pressed the kidneys straight against muscle).
        fossa = (c.labels[ks] == AVF) | (c.labels[ks] == IO)
        intercostal = ring & ~near_spine & (c.labels[ks] != BG)
        c.paint(ks, intercostal & ~fossa, MUSCLE, M.MUSCLE)
        # The lowest ribs pass behind the kidneys' fat, RIB_FROM_KIDNEY_MM from the kidney
        # at least.
        rim = max(1, int(np.ceil(RIB_FROM_KIDNEY_MM / min(c.spacing[1], c.spacing[2]))))
        cross = ndimage.generate_binary_structure(2, 1)[None]
        organ = ndimage.binary_dilation(c.labels[ks] == IO, cross, iterations=rim)
        c.paint(ks, is_bone & ~organ, BONE, M.RIB, part="ribs")
        c.paint(ks, is_cart & ~fossa, BONE, M.CARTILAGE)
        # Sternum: manubrium to xiphoid in front.
        ks2 = c.rows(0.17, 0.30)
        if ks2.start < ks2.stop:
            y = _col(self.cy_c, ks2) - _col(self.b_c, ks2) - 6.0 * W
            c.paint(ks2, c.ellipse(ks2, 0.0, y, 16.0 * W, 6.0 * W), BONE, M.RED_MARROW)
        # Scapulae behind the upper ribs, clavicles in front.
        ks2 = c.rows(0.175, 0.255)
        if ks2.start < ks2.stop:
            a2, b2, cy2 = _col(self.a_c, ks2), _col(self.b_c, ks2), _col(self.cy_c, ks2)
            sc = c.ellipse(ks2, 0.0, cy2, a2 + 24.0, b2 + 24.0, 2.2) & ~c.ellipse(
                ks2, 0.0, cy2, a2 + 18.0, b2 + 18.0, 2.2
            )
            th = np.abs(c.angle(ks2, 0.0, cy2))
            c.paint(ks2, sc & (th > 1.9) & (th < 2.7), BONE, M.RIB)
        ks2 = c.rows(0.163, 0.178)
        if ks2.start < ks2.stop:
            X2, Y2 = c.xy(ks2)
            y = _col(self.cy_m, ks2) - _col(self.b_m, ks2) + 12.0
            clav = (
                (np.abs(Y2 - y - 0.0009 * X2**2) < 6.0)
                & (np.abs(X2) > 18.0)
                & (np.abs(X2) < _col(self.a_m, ks2) - 10.0)
            )
            c.paint(ks2, clav & (c.labels[ks2] != BG), BONE, M.RIB)

    def pelvis(self) -> None:
        """Iliac wings, sacrum, hips and femoral heads, pubis; bladder, rectum, genitalia."""
        c, H, W, s = self.c, self.H, self.W, self.spec
        f_crest = self.f_of_vertebra(22.3)
        f_s1 = self.f_of_vertebra(24.0)
        ks = c.rows(f_crest, 0.488)
        if ks.start < ks.stop:
            a_c, b_c, cy_c = _col(self.a_c, ks), _col(self.b_c, ks), _col(self.cy_c, ks)
            wing = c.ellipse(ks, 0.0, cy_c, a_c + 10.0, b_c + 10.0, 2.2) & ~c.ellipse(
                ks, 0.0, cy_c, a_c + 1.0, b_c + 1.0, 2.2
            )
            th = np.abs(c.angle(ks, 0.0, cy_c))
            X = c.xy(ks)[0]
            # The wings flare from the sacroiliac joints behind to the anterior superior
            # spines at the sides; the front of the belly is muscle, not bone (the wings once
            # reached 50 degrees from the front, a bony arc across the abdominal wall).
            sector = (th > WING_FROM) & (th < 2.75) & (np.abs(X) > 30.0)
            c.paint(ks, wing & sector, BONE, M.CORTICAL)
            inner = c.ellipse(ks, 0.0, cy_c, a_c + 7.5, b_c + 7.5, 2.2) & ~c.ellipse(
                ks, 0.0, cy_c, a_c + 3.5, b_c + 3.5, 2.2
            )
            c.paint(ks, inner & sector, BONE, M.RED_MARROW)
            lining = c.ellipse(ks, 0.0, cy_c, a_c + 1.0, b_c + 1.0, 2.2)
            iliacus = lining & ~c.ellipse(ks, 0.0, cy_c, a_c - 14.0, b_c - 14.0, 2.2)
            # The iliacus behind its fascia, with extraperitoneal fat between it and the bowel.
            fascia = lining & ~c.ellipse(
                ks, 0.0, cy_c, a_c - 14.0 - PSOAS_FAT_MM, b_c - 14.0 - PSOAS_FAT_MM, 2.2
            )
            c.paint_where(ks, fascia & sector & (th < 2.5), AVF, M.FAT, [AVF, IO])
            c.paint_where(
                ks, iliacus & sector & (th < 2.5), MUSCLE, M.MUSCLE, [AVF], part="iliacus"
            )
        ks = c.rows(f_s1, 0.505)
        if ks.start < ks.stop:
            f = c.frac(ks)
            a = Profile([f_s1, 0.47, 0.505], [50, 35, 12])(f) * W
            y = _col(self.cy_c, ks) + _col(self.b_c, ks) + 8.0
            c.paint(ks, c.ellipse(ks, 0.0, y, a, 18.0 * W), BONE, M.CORTICAL)
            c.paint(ks, c.ellipse(ks, 0.0, y, a - 3.0, 15.0 * W), BONE, M.RED_MARROW)
            canal = c.ellipse(ks, 0.0, y + 5.0, Profile([f_s1, 0.49], [9, 4])(f), 4.0)
            c.paint(ks, canal & (f < 0.49), CNS, M.CSF)
        # Hips: each acetabulum a cup of the hip bone, open outward and downward (45 degrees).
        row = min(c.rows(0.485, 0.485).start, len(self.a_m) - 1)
        xh = float(self.a_m[row]) * 0.62
        yh = float(self.cy_m[row]) + 5.0
        uh = 0.485 * H
        for side in (-1.0, 1.0):
            centre = (uh, yh, side * xh)
            # The body of the ilium above the socket is thick bone (the roof of
            # the acetabulum, on to the sacroiliac joint), the psoas passing in front of it (a
            # shell of 4 mm round the joint space once passed for a rib-thin bone).
            body = (uh - 12.0, yh + 4.0, side * (xh - 3.0))
            ks2, m = c.ellipsoid(body, (0.018 * H + 12.0, 34.0 * W, 34.0 * W))
            cup = self._acetabulum(ks2, centre, side)
            c.paint(ks2, m & cup, BONE, M.CORTICAL)
            ks2, m = c.ellipsoid(body, (0.018 * H + 9.0, 31.0 * W, 31.0 * W))
            c.paint(ks2, m & self._acetabulum(ks2, centre, side), BONE, M.RED_MARROW)
        # Pubis in front and ischia behind, low in the pelvis.
        ks = c.rows(0.492, 0.512)
        if ks.start < ks.stop:
            a_c, b_c, cy_c = _col(self.a_c, ks), _col(self.b_c, ks), _col(self.cy_c, ks)
            ring = c.ellipse(ks, 0.0, cy_c, a_c + 12.0, b_c + 12.0, 2.2) & ~c.ellipse(
                ks, 0.0, cy_c, a_c + 1.0, b_c + 1.0, 2.2
            )
            th = np.abs(c.angle(ks, 0.0, cy_c))
            c.paint(ks, ring & (th < 0.9), BONE, M.CORTICAL)
            for side in (-1.0, 1.0):
                c.paint(
                    ks,
                    c.ellipse(ks, side * 48.0 * W, cy_c + 0.5 * b_c, 13.0, 13.0),
                    BONE,
                    M.RED_MARROW,
                )
        # Femoral heads in the acetabula, necks down and out to the trochanters, each femur
        # apart from the hip bone by its joint space (it was once one piece with it: the head
        # painted inside a solid ellipsoid of bone).
        for side in (-1.0, 1.0):
            self._femur(uh, yh, side * xh, side)
        # Bladder, rectum, prostate or uterus.
        row = min(c.rows(0.48, 0.48).start, len(self.a_c) - 1)
        pb, pcy = float(self.b_c[row]), float(self.cy_c[row])
        fill = float(self.rng.uniform(0.5, 1.2))
        ks2, m = c.ellipsoid(
            (0.482 * H, pcy - 0.35 * pb, 0.0), (0.02 * H * fill, 30.0 * fill, 42.0 * fill)
        )
        c.paint_where(ks2, m, IO, M.URINE, [AVF, IO])
        ks2 = c.rows(0.45, PELVIC_FLOOR)
        if ks2.start < ks2.stop:
            y = _col(self.cy_c, ks2) + _col(self.b_c, ks2) - 16.0
            c.paint_where(ks2, c.ellipse(ks2, 0.0, y, 16.0, 14.0), IO, M.BOWEL, [AVF, IO])
        if s.sex == "M":
            ks2, m = c.ellipsoid((0.5 * H, pcy - 0.2 * pb, 0.0), (0.009 * H, 17.0, 20.0))
            c.paint_where(ks2, m, IO, M.SOFT, [AVF, IO])
        else:
            ks2, m = c.ellipsoid((0.465 * H, pcy + 0.1 * pb, 0.0), (0.02 * H, 22.0, 30.0))
            c.paint_where(ks2, m, IO, M.SOFT, [AVF, IO])

    def _acetabulum(self, ks: slice, centre: tuple[float, float, float], side: float) -> Mask:
        """The cup around the femoral head: all but the side that faces out and down."""
        c = self.c
        X, Y = c.xy(ks)
        down = c.u[ks][:, None, None] - centre[0]
        out = side * (X - centre[2])
        reach = np.sqrt(down * down + out * out + (Y - centre[1]) ** 2)
        return np.asarray(out + down < 0.2 * reach)

    def _femur(self, uh: float, yh: float, xh: float, side: float) -> None:
        """Femoral head and neck (the part ``femora``) and the joint space that parts them
        from every other bone: JOINT_MM of cartilage, and at least one voxel."""
        c, H, W = self.c, self.H, self.W
        r_head = FEMORAL_HEAD_MM * W
        ks = c.rows((uh - r_head - JOINT_MM - 10.0) / H, 0.505)
        if ks.start >= ks.stop:
            return
        femur = np.zeros((ks.stop - ks.start, *c.shape[1:]), dtype=bool)
        head_rows, head = c.ellipsoid((uh, yh, xh), (r_head, r_head, r_head))
        femur[head_rows.start - ks.start : head_rows.stop - ks.start] |= head
        neck_rows = c.rows(0.485, 0.505)
        f = c.frac(neck_rows)
        x = xh + side * Profile([0.485, 0.5], [0.0, 32.0])(f) * W
        neck = c.ellipse(neck_rows, x, yh, 16.0 * W, 15.0 * W)
        femur[neck_rows.start - ks.start : neck_rows.stop - ks.start] |= neck
        # The joint: within JOINT_MM of the femur (26 neighbours at least) lie the cartilage,
        # where the hip bone was, and the capsule, where muscle was (the psoas passes in
        # front of the capsule, not on the bone).
        js, is_ = c.window(xh - 60.0, xh + 60.0, yh - 40.0, yh + 40.0)
        box = femur[:, js, is_]
        distance = ndimage.distance_transform_edt(~box, sampling=c.spacing)
        near = (distance <= JOINT_MM) | ndimage.binary_dilation(box, np.ones((3, 3, 3), bool))
        block = c.labels[ks][:, js, is_]
        joint = np.zeros_like(femur)
        joint[:, js, is_] = near & ~box & (block != BG)
        c.paint(ks, joint, MUSCLE, M.DISC)
        c.paint(ks, femur, BONE, M.CORTICAL, part="femora")
        inner = r_head - 3.0
        marrow_rows, marrow = c.ellipsoid((uh, yh, xh), (inner, inner, inner))
        c.paint(marrow_rows, marrow, BONE, M.RED_MARROW, part="femora")
        neck_marrow = c.ellipse(neck_rows, x, yh, 16.0 * W - 3.0, 15.0 * W - 3.0)
        c.paint(neck_rows, neck_marrow, BONE, M.RED_MARROW, part="femora")

    # --- limbs --------------------------------------------------------------------------------
    def _limb(
        self,
        ks: slice,
        cx: F64 | float,
        cy: F64 | float,
        r_muscle: F64,
        sf: F64 | float,
        bones: list[Bone],
        merge: bool = False,
    ) -> None:
        """A limb segment painted only where the canvas is still background.

        With ``merge`` (the thighs at the groin) the limb's muscle also replaces the trunk's
        skin and subcutaneous fat it overlaps: the thigh's muscles run on into the pelvis,
        with no skin between them (the trunk's skin once ran through the root of the thigh,
        a ring of skin and fat inside the body).
        """
        c = self.c
        if ks.start >= ks.stop:
            return
        t = self.skin_t
        free = c.labels[ks] == BG
        r_out = r_muscle + sf + t
        c.paint(ks, c.ellipse(ks, cx, cy, r_out, r_out * 1.05) & free, SKIN, M.SKIN)
        c.paint(ks, c.ellipse(ks, cx, cy, r_out - t, (r_out - t) * 1.05) & free, SF, M.FAT)
        muscle = c.ellipse(ks, cx, cy, r_muscle, r_muscle * 1.05)
        if merge:
            trunk_surface = (c.labels[ks] == SKIN) | (c.labels[ks] == SF)
            free = free | (muscle & trunk_surface)
        c.paint(ks, muscle & free, MUSCLE, M.MUSCLE)
        for bx, by, br, marrow, part in bones:
            c.paint(ks, c.ellipse(ks, bx, by, br, br) & free, BONE, M.CORTICAL, part)
            inner = np.asarray(br) * 0.65
            c.paint(ks, c.ellipse(ks, bx, by, inner, inner) & free, BONE, marrow, part)

    def legs(self) -> None:
        c, W = self.c, self.W
        ms = self.ms**0.5
        fat = 1.3 if self.spec.sex == "F" else 0.9
        ks = c.rows(THIGH_START, 1.0)
        if ks.start >= ks.stop:
            return
        f = c.frac(ks)
        r = (
            Profile(
                [THIGH_START, 0.55, 0.65, KNEE, 0.74, 0.8, 0.9, ANKLE, 0.97, 1.0],
                [78, 72, 58, 46, 44, 47, 32, 24, 30, 26],
            )(f)
            * W
            * ms
        )
        sf = 2.0 + self.sf_t * SF_SHARE(f) * fat
        r_total = r + sf + self.skin_t
        x = r_total * 0.98 + 3.0
        y = -r_total * 1.05
        thigh = f < KNEE - 0.01
        knee = (f >= KNEE - 0.01) & (f < KNEE + 0.025)
        femur_r = np.where(thigh, 14.0 * W, np.where(knee, 30.0 * W, 0.0))
        tibia_r = np.where(f >= KNEE + 0.01, Profile([KNEE, 0.8, ANKLE], [30, 15, 12])(f) * W, 0.0)
        fib_r = np.where((f >= KNEE + 0.02) & (f < ANKLE), 6.0 * W, 0.0)
        foot = f >= ANKLE
        foot_r = np.where(foot, 20.0 * W, 0.0)
        for side in (-1.0, 1.0):
            cx = side * x
            marrow = M.YELLOW_MARROW
            bones: list[Bone] = [
                (cx + side * 6.0, y - 4.0, femur_r, marrow, "femora"),
                (cx - side * 8.0, y - 0.45 * r, tibia_r, marrow, None),
                (cx + side * 0.55 * r, y + 0.1 * r, fib_r, marrow, None),
                (cx, y, foot_r, M.RED_MARROW, None),
            ]
            self._limb(ks, cx, y, r, sf, bones, merge=True)

    def arms(self) -> None:
        c, H, W = self.c, self.H, self.W
        ms = self.ms**0.5
        sf_arm = 2.0 + 0.6 * self.sf_t * (1.2 if self.spec.sex == "F" else 0.8)
        if self.spec.arms == "down":
            ks = c.rows(0.165, 0.53)
            if ks.start >= ks.stop:
                return
            f = c.frac(ks)
            r = (
                Profile([0.165, 0.2, 0.3, 0.33, 0.43, 0.45, 0.53], [36, 40, 34, 30, 20, 22, 18])(f)
                * W
                * ms
            )
            row = min(c.rows(0.26, 0.26).start, len(self.a_b) - 1)
            r_total = r + sf_arm + self.skin_t
            x = float(self.a_b[row]) + self.arm_gap + r_total
            y = float(self.cy_b[row]) - 10.0 + 0.0 * r
        else:
            ks = c.rows(-0.35, 0.19)
            if ks.start >= ks.stop:
                return
            f = c.frac(ks)
            r = (
                Profile([-0.35, -0.26, -0.16, -0.02, 0.1, 0.19], [18, 22, 22, 32, 40, 40])(f)
                * W
                * ms
            )
            r_total = r + sf_arm + self.skin_t
            x = 110.0 * W + self.arm_gap + r_total
            y = -r_total - 60.0
        upper = (f >= 0.17) & (f < 0.31) if self.spec.arms == "down" else (f >= -0.02)
        fore = (f >= 0.31) & (f < 0.44) if self.spec.arms == "down" else (f >= -0.16) & (f < -0.02)
        hum_r = np.where(upper, 12.0 * W, 0.0)
        fore_r = np.where(fore, 7.0 * W, 0.0)
        hand_r = np.where(~upper & ~fore, 5.0 * W, 0.0)
        for side in (-1.0, 1.0):
            cx = side * x
            bones: list[Bone] = [
                (cx, y, hum_r, M.YELLOW_MARROW, None),
                (cx - 11.0, y, fore_r, M.YELLOW_MARROW, None),
                (cx + 11.0, y, fore_r, M.YELLOW_MARROW, None),
                (cx, y, hand_r, M.RED_MARROW, None),
            ]
            self._limb(ks, cx, y, r, sf_arm, bones)
        _ = H

    # --- intramuscular fat ------------------------------------------------------------------------
    def marbling(self) -> None:
        """Intramuscular and intermuscular fat (labelled SF), more with myosteatosis."""
        c = self.c
        sp = c.spacing
        n = smooth_noise(c.shape, (7.0 / sp[0], 7.0 / sp[1], 7.0 / sp[2]), self.rng)
        level = 2.2 - 0.9 * self.spec.myosteatosis
        fat = (n > level) & (c.labels == MUSCLE) & (c.material == M.MUSCLE)
        c.labels[fat] = SF
        c.material[fat] = M.FAT
