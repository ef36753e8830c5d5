"""The message finance gets with the monthly review: the verdict, the figures, the findings CSV."""

from __future__ import annotations

from dataclasses import dataclass

from reconcile.analysis.invoices import FINDING_COLUMNS
from reconcile.analysis.monthly import MonthlyReview
from reconcile.money import format_billed, format_display
from reconcile.reports.csvfile import frame_csv_bytes
from reconcile.reports.environment import environment


@dataclass(frozen=True)
class ReviewMail:
    subject: str
    text: str
    html: str
    csv: bytes
    filename: str


def render_review_mail(review: MonthlyReview, link: str = "") -> ReviewMail:
    """Counts and amounts only in the subject: nothing from customer text reaches a header.
    `link`: where the review is served, when it is (reports.base_url)."""
    context = {"r": review, "rec": review.reconciliation, "link": link, "money": format_display,
               "billed": format_billed}
    env = environment()
    return ReviewMail(
        subject=f"Truedy invoice review {review.period}: {review.headline}",
        text=env.get_template("review.txt.j2").render(**context),
        html=env.get_template("review.html.j2").render(**context),
        csv=frame_csv_bytes(review.reconciliation.findings, FINDING_COLUMNS),
        filename=f"reconciliation-{review.period}.csv",
    )
