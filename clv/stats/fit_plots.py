"""`clv fit --plots DIR`: the figures a reader of the lifetimes and pymc-marketing docs expects.

- `calibration_vs_holdout.png`: mean repeat purchases per customer in the holdout, actual vs
  predicted, by calibration frequency (needs --holdout-end);
- `cumulative_repeat_purchases.png` and `weekly_repeat_purchases.png`: the calibration customers'
  repeat purchases over time, actual vs predicted (each customer's expected purchases since their
  first purchase, E[X(t)], summed over the cohorts), with the calibration end marked;
- `p_alive_matrix_<model>.png`: P(alive) by frequency and recency for a customer of the longest
  observed age;
- `predicted_value_distribution.png`: the customers' predicted value over the horizon.

Drawn with Pillow (already in the dependency tree through Streamlit) so that `clv fit` needs no
plotting library: a small chart helper with labelled axes, ticks, titles, legends and units.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np

from clv.errors import UserError
from clv.stats import btyd, purchase_models

WIDTH, HEIGHT = 1100, 680
LEFT, RIGHT, TOP, BOTTOM = 110, 40, 70, 90
COLORS = {"actual": (30, 30, 30), "bgnbd": (31, 119, 180), "pareto_nbd": (214, 39, 40)}


def check_folder(folder: Path) -> None:
    """The folder exists (or can be made) and is a folder."""
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--plots {folder} is a file: give a folder for the figures")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"--plots {folder}: cannot create the folder ({e.strerror})") from None


# --------------------------------------------------------------------------------------------
# a small chart on a Pillow canvas


def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def nice_ticks(lo: float, hi: float, count: int = 6) -> np.ndarray:
    """Round tick values (1, 2, 2.5, 5 x 10^k steps) covering [lo, hi]."""
    if not np.isfinite(lo) or not np.isfinite(hi) or hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(count - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    return np.arange(start, hi + step * 0.999, step)


def _label(v: float) -> str:
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:g}M"
    if a >= 1e4:
        return f"{v / 1e3:g}k"
    return f"{v:g}"


class Chart:
    def __init__(
        self,
        title: str,
        xlabel: str,
        ylabel: str,
        x_range,
        y_range,
        x_dates: bool = False,
        right: int = RIGHT,
    ):
        from PIL import Image, ImageDraw

        self.right = right

        self.img = Image.new("RGB", (WIDTH, HEIGHT), "white")
        self.draw = ImageDraw.Draw(self.img)
        self.xt = nice_ticks(*x_range) if not x_dates else np.linspace(*x_range, 6)
        self.yt = nice_ticks(*y_range)
        self.x0, self.x1 = (float(self.xt[0]), float(self.xt[-1])) if not x_dates else x_range
        self.y0, self.y1 = float(self.yt[0]), float(self.yt[-1])
        self.x_dates = x_dates
        self.legend: list[tuple[str, tuple, bool]] = []
        self._axes(title, xlabel, ylabel)

    def px(self, x, y):
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        fx = LEFT + (x - self.x0) / (self.x1 - self.x0) * (WIDTH - LEFT - self.right)
        fy = HEIGHT - BOTTOM - (y - self.y0) / (self.y1 - self.y0) * (HEIGHT - TOP - BOTTOM)
        return fx, fy

    def _axes(self, title: str, xlabel: str, ylabel: str) -> None:
        from PIL import Image, ImageDraw

        d, small, mid = self.draw, _font(14), _font(17)
        d.text((WIDTH / 2, 28), title, fill="black", font=_font(21), anchor="mm")
        d.rectangle([LEFT, TOP, WIDTH - self.right, HEIGHT - BOTTOM], outline=(90, 90, 90))
        for v in self.yt:
            _, y = self.px(self.x0, v)
            d.line([LEFT, y, WIDTH - self.right, y], fill=(232, 232, 232))
            d.text((LEFT - 8, y), _label(v), fill="black", font=small, anchor="rm")
        for v in self.xt:
            x, _ = self.px(v, self.y0)
            d.line([x, TOP, x, HEIGHT - BOTTOM], fill=(232, 232, 232))
            text = dt.date.fromordinal(round(v)).isoformat() if self.x_dates else _label(v)
            d.text((x, HEIGHT - BOTTOM + 8), text, fill="black", font=small, anchor="mt")
        d.rectangle([LEFT, TOP, WIDTH - self.right, HEIGHT - BOTTOM], outline=(90, 90, 90))
        d.text(((LEFT + WIDTH - self.right) / 2, HEIGHT - 30), xlabel, fill="black", font=mid, anchor="mm")
        w = int(d.textlength(ylabel, font=mid)) + 8
        side = Image.new("RGB", (w, 26), "white")
        ImageDraw.Draw(side).text((4, 2), ylabel, fill="black", font=mid)
        side = side.rotate(90, expand=True)
        self.img.paste(side, (22, int((TOP + HEIGHT - BOTTOM) / 2 - w / 2)))

    def line(
        self, x, y, color, label: str | None = None, width: int = 3, dashed: bool = False, markers=False
    ):
        fx, fy = self.px(x, y)
        pts = list(zip(fx.tolist(), fy.tolist()))
        if dashed:
            for a, b in zip(pts[::2], pts[1::2]):
                self.draw.line([a, b], fill=color, width=width)
        elif len(pts) > 1:
            self.draw.line(pts, fill=color, width=width, joint="curve")
        if markers:
            for px_, py_ in pts:
                self.draw.ellipse([px_ - 5, py_ - 5, px_ + 5, py_ + 5], fill=color)
        if label:
            self.legend.append((label, color, dashed))

    def bars(self, left, right, height, color, label: str | None = None):
        for a, b, h in zip(left, right, height):
            (xa, xb), (y0, yh) = self.px([a, b], [0, 0])[0], self.px([a, a], [self.y0, h])[1]
            self.draw.rectangle([xa + 1, min(y0, yh), xb - 1, max(y0, yh)], fill=color)
        if label:
            self.legend.append((label, color, False))

    def vline(self, x: float, label: str) -> None:
        fx, _ = self.px(x, self.y0)
        for y in range(TOP, HEIGHT - BOTTOM, 14):
            self.draw.line(
                [float(fx), y, float(fx), min(y + 7, HEIGHT - BOTTOM)], fill=(120, 120, 120), width=2
            )
        self.draw.text((float(fx) + 6, TOP + 8), label, fill=(80, 80, 80), font=_font(14))

    def save(self, path: Path, legend_right: bool = False) -> Path:
        d, font = self.draw, _font(15)
        y = TOP + 12
        width = max((d.textlength(label, font=font) for label, _, _ in self.legend), default=0)
        for label, color, dashed in self.legend:
            x = WIDTH - self.right - width - 70 if legend_right else LEFT + 18
            if dashed:
                for k in range(0, 34, 10):
                    d.line([x + k, y + 8, x + k + 5, y + 8], fill=color, width=3)
            else:
                d.line([x, y + 8, x + 34, y + 8], fill=color, width=4)
            d.text((x + 44, y + 8), label, fill="black", font=font, anchor="lm")
            y += 24
        self.img.save(path, "PNG")
        return path


def _heat(value: float) -> tuple[int, int, int]:
    """0 -> light yellow, 1 -> dark blue."""
    stops = np.array([(255, 255, 204), (161, 218, 180), (65, 182, 196), (34, 94, 168), (12, 44, 132)])
    pos = min(max(value, 0.0), 1.0) * (len(stops) - 1)
    i = min(int(pos), len(stops) - 2)
    c = stops[i] + (stops[i + 1] - stops[i]) * (pos - i)
    return tuple(int(v) for v in c)


# --------------------------------------------------------------------------------------------
# the figures


def write_all(result, folder: Path) -> list[Path]:
    """Every figure the result allows; returns the files written."""
    check_folder(folder)
    out = []
    if result.holdout:
        out.append(calibration_vs_holdout(result, folder / "calibration_vs_holdout.png"))
    out += tracking(result, folder)
    for key, model in result.models.items():
        out.append(p_alive_matrix(result, key, model, folder / f"p_alive_matrix_{key}.png"))
    out.append(value_distribution(result, folder / "predicted_value_distribution.png"))
    return out


def _label_of(key: str) -> str:
    return purchase_models.get(key).label


def calibration_vs_holdout(result, path: Path) -> Path:
    first = next(iter(result.holdout.values()))
    bins = [b["frequency"] for b in first["by_frequency"]]
    n = np.array([b["customers"] for b in first["by_frequency"]], dtype=float)
    actual = np.array([b["actual_purchases"] for b in first["by_frequency"]]) / n
    series = {
        k: np.array([b["predicted_purchases"] for b in h["by_frequency"]]) / n
        for k, h in result.holdout.items()
    }
    top = max(actual.max(), *(v.max() for v in series.values()))
    xs = np.arange(len(bins), dtype=float)
    ch = Chart(
        f"Holdout purchases by calibration frequency ({first['start']} .. {first['end']})",
        "repeat purchase days in the calibration period",
        "mean repeat purchase days per customer in the holdout",
        (0, len(bins) - 1),
        (0, top * 1.1),
    )
    ch.xt = xs  # categorical axis: redraw tick labels as the bins
    ch.line(xs, actual, COLORS["actual"], "actual", markers=True)
    for key, v in series.items():
        ch.line(xs, v, COLORS[key], f"predicted, {_label_of(key)}", dashed=True, markers=True)
    small = _font(14)
    for x, b in zip(xs, bins):
        px_, _ = ch.px(x, ch.y0)
        ch.draw.rectangle(
            [float(px_) - 30, HEIGHT - BOTTOM + 4, float(px_) + 30, HEIGHT - BOTTOM + 26], fill="white"
        )
        ch.draw.text((float(px_), HEIGHT - BOTTOM + 8), b, fill="black", font=small, anchor="mt")
    return ch.save(path)


def expected_new_customer_curve(model, days: np.ndarray, unit: float) -> np.ndarray:
    """E[X(t)] of a customer just acquired, at t = days (in days), in the model's time unit."""
    if isinstance(model, btyd.BGNBD):
        return np.array(
            [btyd.expected_purchases_new_customer(model, d / unit) if d > 0 else 0.0 for d in days]
        )
    from clv.stats import pareto_nbd

    return np.array([pareto_nbd.expected_purchases_new_customer(model, d / unit) for d in days])


def tracking(result, folder: Path) -> list[Path]:
    """Cumulative and weekly repeat purchases of the calibration customers, actual vs predicted."""
    daily = result.series["daily"]
    start = daily["day"].min()
    start = start.date() if hasattr(start, "date") else start
    end_day = (
        dt.date.fromisoformat(next(iter(result.holdout.values()))["end"])
        if result.holdout
        else result.calibration_end
    )
    days = (end_day - start).days + 1
    idx = (np.array([(d.date() if hasattr(d, "date") else d) for d in daily["day"]], dtype="datetime64[D]")
           - np.datetime64(start, "D")).astype(int)  # fmt: skip
    repeat = np.bincount(idx, weights=daily["repeat_purchases"].to_numpy(float), minlength=days)[:days]
    new = np.bincount(idx, weights=daily["new_customers"].to_numpy(float), minlength=days)[:days]
    unit = btyd.TIME_UNITS[result.time_unit]
    grid = np.arange(days, dtype=float)
    predicted = {}
    for key, model in result.models.items():
        curve = expected_new_customer_curve(model, grid, unit)
        predicted[key] = np.convolve(new, curve)[:days]  # Σ over cohorts of E[X(day − first day)]
    cum_actual = np.cumsum(repeat)
    cal = (result.calibration_end - start).days
    x0 = start.toordinal()
    ords = x0 + grid
    top = max(cum_actual.max(), *(p.max() for p in predicted.values()))
    ch = Chart("Cumulative repeat purchases of the calibration customers", "date", "repeat purchase days, cumulative",
               (x0, x0 + days - 1), (0, top * 1.05), x_dates=True)  # fmt: skip
    ch.line(ords, cum_actual, COLORS["actual"], "actual")
    for key, p in predicted.items():
        ch.line(ords, p, COLORS[key], f"predicted, {_label_of(key)}", dashed=True)
    ch.vline(x0 + cal, f"calibration end {result.calibration_end}")
    out = [ch.save(folder / "cumulative_repeat_purchases.png")]
    weeks = days // 7
    if weeks >= 2:
        wk = np.arange(weeks)
        wa = cum_actual[7 * wk + 6] - np.r_[0, cum_actual[7 * wk[:-1] + 6]]
        wp = {k: p[7 * wk + 6] - np.r_[0, p[7 * wk[:-1] + 6]] for k, p in predicted.items()}
        top = max(wa.max(), *(v.max() for v in wp.values()))
        ch = Chart("Weekly repeat purchases of the calibration customers", "week starting", "repeat purchase days per week",
                   (x0, x0 + 7 * (weeks - 1)), (0, top * 1.1), x_dates=True)  # fmt: skip
        ch.line(x0 + 7 * wk, wa, COLORS["actual"], "actual", width=2)
        for key, v in wp.items():
            ch.line(x0 + 7 * wk, v, COLORS[key], f"predicted, {_label_of(key)}", width=3)
        ch.vline(x0 + cal, f"calibration end {result.calibration_end}")
        out.append(ch.save(folder / "weekly_repeat_purchases.png"))
    return out


def p_alive_matrix(result, key: str, model, path: Path) -> Path:
    """P(alive) for a customer of the longest observed age, by frequency and recency."""
    pm = purchase_models.get(key)
    s = result.summary
    T_max = float(s["T"].max())
    x_max = int(max(min(np.quantile(s["frequency"], 0.995), 60), 5))
    xs = np.arange(x_max + 1, dtype=float)
    edges = np.linspace(0, T_max, 41)
    mids = (edges[:-1] + edges[1:]) / 2
    X, R = np.meshgrid(xs, mids)
    R = np.where(X == 0, 0.0, R)  # recency is 0 without repeat purchases: one value in that column
    P = pm.p_alive(model, X.ravel(), R.ravel(), np.full(X.size, T_max)).reshape(X.shape)
    unit = result.time_unit
    ch = Chart(f"P(alive), {pm.label}, for a customer first seen {T_max:g} {unit}s before {result.calibration_end}",
               "repeat purchase days (frequency)", f"{unit}s from first to last purchase (recency)",
               (0, x_max + 1), (0, T_max), right=130)  # fmt: skip
    for i in range(len(mids)):
        for j, x in enumerate(xs):
            (xa, xb), (ya, yb) = ch.px([x, x + 1], [edges[i], edges[i + 1]])
            ch.draw.rectangle([float(xa), float(yb), float(xb), float(ya)], fill=_heat(P[i, j]))
    ch.draw.rectangle([LEFT, TOP, WIDTH - ch.right, HEIGHT - BOTTOM], outline=(90, 90, 90))
    # colour scale, in the right margin
    small = _font(13)
    x0 = WIDTH - ch.right + 40
    for k in range(101):
        y = TOP + 20 + (100 - k) * 2
        ch.draw.line([x0, y, x0 + 20, y], fill=_heat(k / 100), width=2)
    for v in (0, 0.5, 1):
        ch.draw.text((x0 + 26, TOP + 20 + (1 - v) * 200), f"{v:g}", fill="black", font=small, anchor="lm")
    ch.draw.text((x0 + 10, TOP + 232), "P(alive)", fill="black", font=small, anchor="mt")
    return ch.save(path)


def value_distribution(result, path: Path) -> Path:
    """Histogram of the predicted value over the horizon (customers with a repeat purchase and
    all customers alike; the x axis is cut at the 99th percentile)."""
    values = {k: np.asarray(v["horizon_value"]) for k, v in result.scores.items()}
    hi = max(float(np.quantile(v, 0.99)) for v in values.values()) or 1.0
    edges = np.linspace(0, hi, 41)
    counts = {k: np.histogram(np.clip(v, 0, hi), edges)[0] for k, v in values.items()}
    top = max(c.max() for c in counts.values())
    ch = Chart(f"Predicted value per customer over the next {result.horizon_days:g} days (last bar: the top 1%)",
               "predicted value (currency of the amount column)", "customers", (0, hi), (0, top * 1.1))  # fmt: skip
    width = (edges[1] - edges[0]) / len(counts)
    for i, (key, c) in enumerate(counts.items()):
        left = edges[:-1] + i * width
        ch.bars(left, left + width, c, COLORS[key], f"{_label_of(key)} (mean {values[key].mean():,.2f})")
    return ch.save(path, legend_right=True)
