"""The report's files: a readable HTML page with image grids, PNG grids and CSVs behind it."""

import base64
import csv
import html
import io
from pathlib import Path

from PIL import Image, ImageDraw, ImageOps

from pipelines.quality.check import QualityReport
from pipelines.quality.duplicates import relative_name

THUMBNAIL = 84
SHOWN_PAIRS = 24
SHOWN_ISSUES = 40
STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px} h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:13px} td,th{padding:3px 8px;border:1px solid #ddd}
.grid{display:flex;flex-wrap:wrap;gap:10px}
.card{border:1px solid #ccc;border-radius:6px;padding:6px;font-size:11px;
  text-align:center;width:190px}
.card img{width:84px;height:84px;image-rendering:pixelated;border:1px solid #eee}
.warn{color:#a40000;font-weight:600} .note{color:#7a5200}
"""


def _thumbnail(file: str) -> Image.Image:
    """The stored file, read only, fitted into a THUMBNAIL square."""
    try:
        with Image.open(file) as image:
            image = image.convert("RGB")
    except OSError:
        return Image.new("RGB", (THUMBNAIL, THUMBNAIL), (255, 220, 220))
    return ImageOps.pad(image, (THUMBNAIL, THUMBNAIL), method=Image.NEAREST, color=(255, 255, 255))


def _data_uri(file: str) -> str:
    buffer = io.BytesIO()
    _thumbnail(file).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _card(files: list[str], caption: str) -> str:
    images = "".join(
        f'<img src="{_data_uri(file)}" title="{html.escape(file)}">' for file in files
    )
    return f'<div class="card">{images}<br>{caption}</div>'


def _pair_cards(pairs: list[dict]) -> str:
    cards = [
        _card(
            [pair["file_a"], pair["file_b"]],
            f"{pair['split_a']}/{html.escape(relative_name(pair['file_a']))}<br>"
            f"{pair['split_b']}/{html.escape(relative_name(pair['file_b']))}<br>"
            f"{pair['kind']}, pixel diff {pair['pixel_difference']}",
        )
        for pair in pairs[:SHOWN_PAIRS]
    ]
    more = f"<p>... and {len(pairs) - SHOWN_PAIRS} more in duplicates.csv</p>" * (
        len(pairs) > SHOWN_PAIRS
    )
    return f'<div class="grid">{"".join(cards)}</div>{more}' if pairs else "<p>none found</p>"


def _issue_cards(issues: list[dict]) -> str:
    cards = [
        _card(
            [issue["file"]],
            f"#{issue['rank']} {html.escape(relative_name(issue['file']))}<br>"
            f"given <b>{html.escape(issue['given_label'])}</b>, suggested "
            f"<b>{html.escape(issue['suggested_label'])}</b><br>score {issue['score']}",
        )
        for issue in issues[:SHOWN_ISSUES]
    ]
    return f'<div class="grid">{"".join(cards)}</div>' if issues else "<p>none found</p>"


def _table(rows: list[list], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(str(cell))}</th>" for cell in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _images_section(images: dict | None) -> str:
    if not images:
        return "<p>not checked (data.quality.checks)</p>"
    counts = images["class_counts"]
    classes = list(next(iter(counts.values())))
    rows = [[split, *counts[split].values()] for split in counts]
    odd = images["odd_images"]
    return (
        _table(rows, ["split", *classes])
        + f"<p>train imbalance {images['imbalance']}:1; stored sizes "
        + html.escape(", ".join(f"{size} ({count})" for size, count in images["sizes"].items()))
        + "; modes "
        + html.escape(", ".join(f"{mode} ({count})" for mode, count in images["modes"].items()))
        + f"</p><p>cleanvision on {images['odd_images_checked']} images: {len(odd)} flagged</p>"
        + _table(
            [
                [row["split"], relative_name(row["file"]), row["issue"], row["score"]]
                for row in odd[:30]
            ],
            ["split", "file", "issue", "score"],
        )
    )


def render_html(report: QualityReport, *, title: str) -> str:
    """The whole report as one self-contained page (images inlined, so the MLflow UI shows it)."""
    cross, within = report.cross_split(), report.within_split()
    notes = "".join(f'<li class="note">{html.escape(note)}</li>' for note in report.notes)
    seconds = ", ".join(f"{name} {value:.1f} s" for name, value in report.seconds.items())
    issues = report.label_issues
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>
<p>data fingerprint {report.fingerprint}; {seconds or "no checks run"}</p><ul>{notes}</ul>
<h2>Copies across splits: {len(cross)}</h2>
<p class="{"warn" if cross else ""}">An image in train and in val or test inflates the score the
study ranks models by. data.quality.drop_leaks=true trains without the train-side copies.</p>
{_pair_cards(cross)}
<h2>Copies within a split: {len(within)}</h2>{_pair_cards(within)}
<h2>Likely wrong labels: {len(issues)} of {report.label_checked_images:,} train images checked
(of {report.train_images:,})</h2>
<p>Ranked by cleanlab's label quality on out-of-fold probabilities (lowest first).</p>
{_issue_cards(issues)}
<h2>Classes, sizes, modes, odd images</h2>{_images_section(report.images)}
</body></html>"""


def _write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    with path.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def pair_grid(pairs: list[dict], *, shown: int = SHOWN_PAIRS) -> Image.Image:
    """Duplicate pairs side by side, one pair per row, captioned with their splits."""
    rows = pairs[:shown] or [None]
    grid = Image.new("RGB", (2 * THUMBNAIL + 260, len(rows) * (THUMBNAIL + 6)), "white")
    draw = ImageDraw.Draw(grid)
    for row, pair in enumerate(rows):
        top = row * (THUMBNAIL + 6)
        if pair is None:
            draw.text((8, 8), "no copies found", fill="black")
            break
        grid.paste(_thumbnail(pair["file_a"]), (0, top))
        grid.paste(_thumbnail(pair["file_b"]), (THUMBNAIL + 4, top))
        caption = (
            f"{pair['split_a']}/{relative_name(pair['file_a'])}\n"
            f"{pair['split_b']}/{relative_name(pair['file_b'])}\n{pair['kind']}"
        )
        draw.multiline_text((2 * THUMBNAIL + 12, top + 8), caption, fill="black")
    return grid


def issue_grid(issues: list[dict], *, columns: int = 8, shown: int = SHOWN_ISSUES) -> Image.Image:
    """Likely mislabeled images with their given and suggested labels."""
    issues = issues[:shown]
    cell_width, cell_height = THUMBNAIL + 70, THUMBNAIL + 34
    rows = max(1, -(-len(issues) // columns))
    grid = Image.new("RGB", (columns * cell_width, rows * cell_height), "white")
    draw = ImageDraw.Draw(grid)
    for index, issue in enumerate(issues):
        left, top = (index % columns) * cell_width, (index // columns) * cell_height
        grid.paste(_thumbnail(issue["file"]), (left + 35, top))
        caption = f"given {issue['given_label']}\nsuggested {issue['suggested_label']}"
        draw.multiline_text((left + 4, top + THUMBNAIL + 2), caption, fill="black")
    return grid


def write_report_files(report: QualityReport, folder: Path, *, title: str) -> None:
    """report.html, the CSVs and the PNG grids, into `folder`."""
    pair_columns = [
        "split_a",
        "file_a",
        "split_b",
        "file_b",
        "kind",
        "hash_distance",
        "pixel_difference",
    ]
    _write_csv(folder / "duplicates.csv", report.duplicates, pair_columns)
    _write_csv(
        folder / "label_issues.csv",
        report.label_issues,
        ["rank", "split", "file", "given_label", "suggested_label", "score"],
    )
    if report.images:
        _write_csv(
            folder / "odd_images.csv",
            report.images["odd_images"],
            ["split", "file", "issue", "score"],
        )
    pair_grid(report.cross_split()).save(folder / "cross_split_copies.png")
    pair_grid(report.within_split()).save(folder / "within_split_copies.png")
    issue_grid(report.label_issues).save(folder / "label_issues.png")
    (folder / "report.html").write_text(render_html(report, title=title))
