"""Physically based adverse-weather corruptions of a LiDAR sweep: fog, snow and wet ground (Robo3D's weather set).

All three share one receiver model (`Detector`): a return of reflectivity ``rho`` (the point's intensity, read as
a reflectivity in 0..1) at range ``R`` has a received power proportional to ``rho / R^2`` (a Lambertian target
filling the beam), and is detected when that power exceeds the power of a reference target (``floor_reflectivity``
at ``floor_range``). Returns that were detectable in clear weather stay detectable unless the weather lowers
them under that floor. Weather never raises a point's intensity. Each function works on the points alone and
returns a `WeatherResult`: which original points survive (with their new intensity) and which points the
weather created (fog droplets, snow flakes), each tied to the beam (original point) it replaced. The registered
corruptions ``fog``, ``snow`` and ``wet_ground`` that apply these to a frame are in `seal.robustness.corruptions`.

Models (written from the physics, after the ideas of Hahner et al., ICCV 2021 / CVPR 2022):
- fog: extinction ``beta`` (1/m) attenuates every return by ``exp(-2 beta R)``; the fog itself backscatters
  (backscatter coefficient ``k * beta``, k = 0.046 / 2.996 1/sr from the meteorological-optical-range relations),
  and a beam reports the fog echo instead of its target when the echo is the stronger of the two;
- snow: Gunn-Marshall particle size distribution for a snowfall rate; flakes inside each beam's cone are drawn
  as a Poisson process, each occluding the fraction (D/2w)^2 of the beam; a flake echo replaces the target echo
  when stronger, and the target echo loses the energy the flakes blocked (both ways);
- wet ground: a water film of height h fills the road texture (coverage 1 - exp(-h / texture depth)); where
  covered, the Fresnel reflection of the air-water interface sends energy away specularly (both ways) and only
  ~1/n^2 of the diffuse light leaves the film towards the sensor.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

_FOG_BACKSCATTER_RATIO = 0.046 / 2.996  # backscatter / extinction coefficient of fog droplets (1/sr)


@dataclass(frozen=True)
class Detector:
    """Receiver model: detected when ``rho / R^2`` exceeds ``floor_reflectivity / floor_range^2``."""

    floor_reflectivity: float = 0.05   # a 5 % target ...
    floor_range: float = 80.0          # ... is the weakest return seen at 80 m
    min_reflectivity: float = 0.02     # intensities under this are read as this (near-zero intensity is noise)

    @property
    def floor(self) -> float:
        return self.floor_reflectivity / self.floor_range ** 2

    def power(self, intensity: np.ndarray, rng_m: np.ndarray) -> np.ndarray:
        """Clear-weather received power of returns (reflectivity / m^2)."""
        return np.maximum(intensity, self.min_reflectivity) / np.maximum(rng_m, 1e-3) ** 2


@dataclass(frozen=True)
class FogParams:
    """Fog of extinction coefficient ``beta`` (1/m); meteorological optical range = 2.996 / beta."""

    beta: float
    backscatter_ratio: float = _FOG_BACKSCATTER_RATIO
    pulse_length: float = 3.0     # c * tau / 2 of a ~20 ns pulse, metres of fog integrated into one echo
    blind_range: float = 1.0      # no echo closer than this
    overlap_range: float = 10.0   # transmitter/receiver overlap grows quadratically up to full at this range
    detector: Detector = field(default_factory=Detector)


@dataclass(frozen=True)
class SnowParams:
    """Snowfall of ``rate`` mm/h (water equivalent)."""

    rate: float
    divergence: float = 3e-3      # full beam divergence, rad
    exit_radius: float = 0.005    # beam radius at the sensor, m
    reflectivity: float = 0.9     # of a snow flake at 905 nm
    blind_range: float = 1.0
    max_flake_range: float = 15.0  # flakes simulated one by one up to here; beyond, mean extinction only
    detector: Detector = field(default_factory=Detector)

    def size_distribution(self) -> tuple[float, float]:
        """Gunn-Marshall N(D) = N0 exp(-lam D): (N0 in 1/(m^3 mm), lam in 1/mm), D the melted diameter in mm."""
        return 3.8e3 * self.rate ** -0.87, 2.55 * self.rate ** -0.48


@dataclass(frozen=True)
class WetGroundParams:
    """A water film of ``water_mm`` on the ground points."""

    water_mm: float
    texture_depth_mm: float = 0.8  # mean texture depth of asphalt: the film covers it gradually
    refractive_index: float = 1.33
    detector: Detector = field(default_factory=Detector)


@dataclass
class WeatherResult:
    """``keep``: surviving original points (sorted) with ``intensity``; created points with the beam they replace."""

    keep: np.ndarray
    intensity: np.ndarray
    created: np.ndarray            # (M, 4) float32 x y z intensity
    created_from: np.ndarray       # (M,) index of the original point whose beam produced the created point


def _ranges(points: np.ndarray) -> np.ndarray:
    return np.linalg.norm(points[:, :3].astype(np.float64), axis=1)


def _result(points: np.ndarray, kept: np.ndarray, factor: np.ndarray, new_mask: np.ndarray,
            new_range: np.ndarray, new_intensity: np.ndarray, rng_m: np.ndarray) -> WeatherResult:
    """Assemble a result: kept points get intensity * factor (<= 1); created points lie on their beam at new_range."""
    keep = np.flatnonzero(kept)
    intensity = (points[keep, 3].astype(np.float64) * np.minimum(factor[keep], 1.0)).astype(np.float32)
    src = np.flatnonzero(new_mask)
    created = np.empty((src.size, 4), dtype=np.float32)
    scale = new_range[src] / np.maximum(rng_m[src], 1e-6)
    created[:, :3] = points[src, :3] * scale[:, None]
    created[:, 3] = np.clip(new_intensity[src], 0.0, 1.0)
    return WeatherResult(keep=keep, intensity=intensity, created=created, created_from=src)


def fog(points: np.ndarray, params: FogParams, rng: np.random.Generator) -> WeatherResult:
    """Attenuate every return two-way, lose those under the floor, and let stronger fog echoes replace targets.

    The fog echo of a beam is placed at a range drawn from the beam's backscatter profile
    ``g(r) exp(-2 beta r) / r^2`` on [blind_range, R] (g = overlap), so it comes closer as beta grows; its power is
    that profile times ``pi * k * beta * pulse_length`` (a volume target relative to a Lambertian one) times an
    exponential speckle factor (random droplet positions). Draws do not depend on beta, so severities are coupled.
    """
    det, beta = params.detector, params.beta
    rng_m = _ranges(points)
    n = points.shape[0]
    u_range, speckle = rng.random(n), rng.exponential(1.0, n)
    transmission = np.exp(-2.0 * beta * rng_m)
    hard = det.power(points[:, 3], rng_m) * transmission

    # backscatter profile on a grid, its cumulative integral, and an inverse-CDF draw truncated at each R
    top = max(float(rng_m.max(initial=0.0)), params.blind_range + 1e-3)
    grid = np.linspace(params.blind_range, top, 4096)
    overlap = np.clip((grid - params.blind_range) / (params.overlap_range - params.blind_range), 0.0, 1.0) ** 2
    profile = overlap * np.exp(-2.0 * beta * grid) / grid ** 2
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (profile[1:] + profile[:-1]) * np.diff(grid))])
    reach = np.interp(rng_m, grid, cdf)
    echo_r = np.interp(u_range * reach, cdf, grid)
    gain = np.pi * params.backscatter_ratio * beta * params.pulse_length
    echo_overlap = np.clip((echo_r - params.blind_range) / (params.overlap_range - params.blind_range), 0, 1) ** 2
    echo = gain * echo_overlap * np.exp(-2.0 * beta * echo_r) / echo_r ** 2 * speckle
    echo[(rng_m <= params.blind_range) | (reach <= 0)] = 0.0

    scatter = (echo > hard) & (echo >= det.floor) if beta > 0 else np.zeros(n, dtype=bool)
    kept = ~scatter & (hard >= det.floor) if beta > 0 else np.ones(n, dtype=bool)
    return _result(points, kept, transmission, scatter, echo_r, echo * echo_r ** 2, rng_m)


def snow(points: np.ndarray, params: SnowParams, rng: np.random.Generator, chunk: int = 20000) -> WeatherResult:
    """Sample the flakes in each beam's cone, let the strongest flake echo beat a weaker target, attenuate the rest.

    Beam radius w(r) = exit_radius + r * divergence / 2; the expected number of flakes in a beam up to range b is
    N_total * pi * integral w(r)^2 dr; a flake of diameter D blocks (D / 2w)^2 of the beam and echoes
    ``reflectivity * (D/2w)^2 / r^2``. Beyond max_flake_range only the mean extinction of the distribution counts.
    """
    det = params.detector
    n0, lam = params.size_distribution()
    n_total = n0 / lam                                   # flakes per m^3
    extinction = np.pi * n0 / lam ** 3 * 1e-6            # 2 * (pi/4) * integral N(D) D^2 dD, D in mm -> m^2
    half_div, w0, a = params.divergence / 2.0, params.exit_radius, params.blind_range
    rng_m = _ranges(points)
    n = points.shape[0]
    occluded = np.zeros(n)
    best = np.zeros(n)
    best_r = np.zeros(n)

    def cube(r: np.ndarray) -> np.ndarray:
        return (w0 + half_div * r) ** 3

    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        b = np.clip(rng_m[start:stop], a, params.max_flake_range)
        expected = n_total * np.pi * (cube(b) - cube(np.full_like(b, a))) / (3.0 * half_div)
        counts = rng.poisson(expected)
        beam = np.repeat(np.arange(start, stop), counts)
        lo, hi = cube(np.full(beam.size, a)), cube(b[beam - start])
        r = (np.cbrt(lo + rng.random(beam.size) * (hi - lo)) - w0) / half_div   # density ~ w(r)^2 on [a, b]
        diameter = rng.exponential(1.0 / lam, beam.size) * 1e-3                 # metres
        frac = np.minimum((diameter / (2.0 * (w0 + half_div * r))) ** 2, 1.0)
        power = params.reflectivity * frac / r ** 2
        occluded[start:stop] = np.bincount(beam - start, weights=frac, minlength=stop - start)
        order = np.lexsort((-power, beam))
        first = np.unique(beam[order], return_index=True)[1]
        top = order[first]
        best[beam[top]] = power[top]
        best_r[beam[top]] = r[top]

    transmission = (1.0 - np.minimum(occluded, 1.0)) ** 2 * np.exp(
        -2.0 * extinction * np.maximum(rng_m - params.max_flake_range, 0.0))
    hard = det.power(points[:, 3], rng_m) * transmission
    flake = (best > hard) & (best >= det.floor) & (best_r < rng_m)
    kept = ~flake & (hard >= det.floor)
    return _result(points, kept, transmission, flake, best_r, best * best_r ** 2, rng_m)


def fresnel_reflectance(cos_incidence: np.ndarray, n: float) -> np.ndarray:
    """Unpolarised Fresnel reflectance of light entering a medium of index ``n`` from air."""
    cos_i = np.clip(cos_incidence, 1e-6, 1.0)
    sin_t = np.sqrt(1.0 - cos_i ** 2) / n
    cos_t = np.sqrt(1.0 - sin_t ** 2)
    rs = ((cos_i - n * cos_t) / (cos_i + n * cos_t)) ** 2
    rp = ((cos_t - n * cos_i) / (cos_t + n * cos_i)) ** 2
    return 0.5 * (rs + rp)


def wet_ground(points: np.ndarray, ground: np.ndarray, params: WetGroundParams) -> WeatherResult:
    """Lower ground intensities by the water film's specular loss; drop ground returns that fall under the floor.

    Ground is assumed horizontal in the LiDAR frame (incidence cosine |z| / R). Non-ground points are untouched.
    Deterministic: no random draw.
    """
    det = params.detector
    rng_m = _ranges(points)
    coverage = 1.0 - np.exp(-params.water_mm / params.texture_depth_mm)
    cos_inc = np.abs(points[:, 2].astype(np.float64)) / np.maximum(rng_m, 1e-6)
    through = (1.0 - fresnel_reflectance(cos_inc, params.refractive_index)) ** 2 / params.refractive_index ** 2
    factor = np.where(ground, (1.0 - coverage) + coverage * through, 1.0)
    kept = ~ground | (det.power(points[:, 3], rng_m) * factor >= det.floor)
    none = np.zeros(points.shape[0], dtype=bool)
    return _result(points, kept, factor, none, rng_m, np.zeros(points.shape[0]), rng_m)


__all__ = ["Detector", "FogParams", "SnowParams", "WetGroundParams", "WeatherResult", "fog", "snow",
           "wet_ground", "fresnel_reflectance"]
