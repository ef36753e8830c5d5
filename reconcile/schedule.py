"""When jobs are due, as pure functions of a cron expression, a time zone and `now`.

A slot is a wall-clock time in the configured zone ("2026-10-25T02:30"). On the night
clocks fall back, a wall-clock time happens twice; it is still one slot, so a daily job
fires once. On the night they spring forward, a missing wall-clock time fires once, at
the instant APScheduler maps it to.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

LOOKBACK = dt.timedelta(days=40)


class WallClockCronTrigger(CronTrigger):
    """A CronTrigger that never fires twice for the same wall-clock time (DST fall-back)."""

    def get_next_fire_time(self, previous_fire_time: dt.datetime | None, now: dt.datetime) -> dt.datetime | None:
        next_time: dt.datetime | None = super().get_next_fire_time(previous_fire_time, now)
        if previous_fire_time is None:
            return next_time
        # Compare in UTC: aware datetimes that share one tzinfo compare by wall time and
        # ignore `fold`, which is exactly wrong in the hour that happens twice.
        previous_utc = previous_fire_time.astimezone(dt.UTC)
        probe = max(now.astimezone(dt.UTC), previous_utc)
        for _ in range(2 * 24 * 3600):
            if next_time is None or (next_time.astimezone(dt.UTC) > previous_utc
                                     and slot_key(next_time) > slot_key(previous_fire_time)):
                return next_time
            # A wall-clock time that already fired (clocks fell back), or APScheduler mapping
            # an ambiguous local time to its first occurrence: look further on. The previous
            # fire time is left out on purpose: CronTrigger would restart from it.
            probe = max(probe, next_time.astimezone(dt.UTC)) + dt.timedelta(seconds=1)
            next_time = super().get_next_fire_time(None, probe)
        return next_time


def trigger_for(expression: str, timezone: str) -> WallClockCronTrigger:
    trigger: WallClockCronTrigger = WallClockCronTrigger.from_crontab(expression, timezone=ZoneInfo(timezone))
    return trigger


def slot_key(fire_time: dt.datetime) -> str:
    """The wall-clock slot of a fire time, in the fire time's own zone."""
    return fire_time.strftime("%Y-%m-%dT%H:%M")


def fire_times(expression: str, timezone: str, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """Every fire time in [start, end)."""
    trigger = trigger_for(expression, timezone)
    times: list[dt.datetime] = []
    previous = None
    now = start
    while True:
        next_time = trigger.get_next_fire_time(previous, now)
        if next_time is None or next_time.astimezone(dt.UTC) >= end:
            return times
        if times and next_time.astimezone(dt.UTC) <= times[-1].astimezone(dt.UTC):
            raise RuntimeError(f"the trigger did not advance past {next_time}")  # never loop forever
        times.append(next_time)
        previous, now = next_time, next_time + dt.timedelta(microseconds=1)


def latest_slot(expression: str, timezone: str, now: dt.datetime) -> dt.datetime | None:
    """The newest fire time at or before `now` (within the last 40 days), looking back in widening steps."""
    for window in (dt.timedelta(hours=2), dt.timedelta(days=2), LOOKBACK):
        times = fire_times(expression, timezone, now - window, now + dt.timedelta(microseconds=1))
        if times:
            return times[-1]
    return None


def next_fire(expression: str, timezone: str, now: dt.datetime) -> dt.datetime | None:
    return trigger_for(expression, timezone).get_next_fire_time(None, now)


def missed_slot(expression: str, timezone: str, now: dt.datetime, already_ran: set[str],
                grace: dt.timedelta) -> dt.datetime | None:
    """The slot to catch up on start: the newest one before now that has no run, if within `grace`."""
    slot = latest_slot(expression, timezone, now)
    if slot is None or slot_key(slot) in already_ran or now - slot > grace:
        return None
    return slot
