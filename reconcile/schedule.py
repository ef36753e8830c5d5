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
        next_time = super().get_next_fire_time(previous_fire_time, now)
        for _ in range(48):
            if next_time is None or previous_fire_time is None or slot_key(next_time) != slot_key(previous_fire_time):
                break
            # The repeated hour: step past it. (From inside it APScheduler maps the ambiguous
            # local time back to its first occurrence and would hand out the same time again.)
            next_time = super().get_next_fire_time(next_time, next_time + dt.timedelta(hours=1))
        return next_time


def trigger_for(expression: str, timezone: str) -> WallClockCronTrigger:
    return WallClockCronTrigger.from_crontab(expression, timezone=ZoneInfo(timezone))


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
        if next_time is None or next_time >= end:
            return times
        if times and next_time <= times[-1]:
            raise RuntimeError(f"the trigger did not advance past {next_time}")  # never loop forever
        times.append(next_time)
        previous, now = next_time, next_time + dt.timedelta(microseconds=1)


def latest_slot(expression: str, timezone: str, now: dt.datetime) -> dt.datetime | None:
    """The newest fire time at or before `now` (within the last 40 days)."""
    times = fire_times(expression, timezone, now - LOOKBACK, now + dt.timedelta(microseconds=1))
    return times[-1] if times else None


def next_fire(expression: str, timezone: str, now: dt.datetime) -> dt.datetime | None:
    return trigger_for(expression, timezone).get_next_fire_time(None, now)


def missed_slot(expression: str, timezone: str, now: dt.datetime, already_ran: set[str],
                grace: dt.timedelta) -> dt.datetime | None:
    """The slot to catch up on start: the newest one before now that has no run, if within `grace`."""
    slot = latest_slot(expression, timezone, now)
    if slot is None or slot_key(slot) in already_ran or now - slot > grace:
        return None
    return slot
