"""Chapter 5 (transactions and concurrency): its checks, the anomaly schedules, the bank under load, retries."""

from course.chapters.ch05_transactions.checks import check, registry

__all__ = ["check", "registry"]
