"""Scheduled actions: cron expressions, option checks, whole actions and their firings."""

import time
from datetime import UTC, datetime, timedelta

import pytest

from beanpole.core.autoscaling.schedule import (
    NAMESPACE,
    OPTIONS,
    Cron,
    Firing,
    ScheduledAction,
    actions_from,
    check_option,
    describe,
    in_force,
    last_firing,
    next_firing,
    upcoming,
)
from beanpole.core.errors import InvalidInput


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> float:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()


def action(
    name: str = "Nightly",
    *,
    min_size: int | None = 1,
    max_size: int | None = None,
    desired: int | None = None,
    start: float | None = None,
    end: float | None = None,
    recurrence: str | None = None,
    suspended: bool = False,
) -> ScheduledAction:
    return ScheduledAction(name, min_size, max_size, desired, start, end, recurrence, suspended)


def key(resource: str, option: str) -> str:
    return f"{NAMESPACE}:{resource}:{option}"


# --- cron parsing -----------------------------------------------------------------------------


def test_stars_match_everything():
    cron = Cron.parse("* * * * *")
    assert cron.minutes == tuple(range(60))
    assert cron.hours == tuple(range(24))
    assert cron.days == tuple(range(1, 32))
    assert cron.months == tuple(range(1, 13))
    assert cron.weekdays == tuple(range(7))
    assert not cron.days_restricted
    assert not cron.weekdays_restricted


def test_numbers_ranges_lists_and_steps():
    cron = Cron.parse("0,30 9-17/2 1-10/3 */4 1,3-4")
    assert cron.minutes == (0, 30)
    assert cron.hours == (9, 11, 13, 15, 17)
    assert cron.days == (1, 4, 7, 10)
    assert cron.months == (1, 5, 9)
    assert cron.weekdays == (1, 3, 4)
    assert cron.days_restricted
    assert cron.weekdays_restricted


def test_star_steps_and_a_start_with_a_step():
    assert Cron.parse("*/15 * * * *").minutes == (0, 15, 30, 45)
    assert Cron.parse("5/20 * * * *").minutes == (5, 25, 45)  # from 5 to the end
    assert Cron.parse("* * */10 * *").days == (1, 11, 21, 31)
    assert Cron.parse("7/100 * * * *").minutes == (7,)


def test_month_and_day_names_in_any_case():
    cron = Cron.parse("0 0 * jan,Mar-may,DEC sun")
    assert cron.months == (1, 3, 4, 5, 12)
    assert cron.weekdays == (0,)
    assert Cron.parse("0 9 * * MON-FRI").weekdays == (1, 2, 3, 4, 5)
    assert Cron.parse("0 9 * * mon-fri/2").weekdays == (1, 3, 5)
    assert Cron.parse("0 9 * * Sat,Sun").weekdays == (0, 6)


def test_day_of_week_seven_is_sunday():
    assert Cron.parse("0 0 * * 7").weekdays == (0,)
    assert Cron.parse("0 0 * * 5-7").weekdays == (0, 5, 6)
    assert Cron.parse("0 0 * * 0,7").weekdays == (0,)


def test_whitespace_is_collapsed_in_the_text():
    cron = Cron.parse("  0\t 9 *  *   MON-FRI \n")
    assert cron.text == "0 9 * * MON-FRI"
    assert str(cron) == "0 9 * * MON-FRI"


def test_a_field_starting_with_a_star_counts_as_unrestricted():
    assert not Cron.parse("0 0 */2 * 1").days_restricted
    assert Cron.parse("0 0 1-31 * 1").days_restricted


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "it is empty"),
        ("   ", "it is empty"),
        ("* * * *", "it has 4 fields, not five"),
        ("0 0 * * * 2026", "it has 6 fields, not five"),
        ("60 * * * *", "minute 60 is out of range 0-59"),
        ("0 25 * * *", "hour 25 is out of range 0-23"),
        ("0 0 0 * *", "day-of-month 0 is out of range 1-31"),
        ("0 0 32 * *", "day-of-month 32 is out of range 1-31"),
        ("0 0 * 13 *", "month 13 is out of range 1-12"),
        ("0 0 * 0 *", "month 0 is out of range 1-12"),
        ("0 0 * * 8", "day-of-week 8 is out of range 0-7"),
        ("0 0 * FOO *", "month 'FOO' is not a number 1-12 or a name JAN-DEC"),
        ("0 0 * * FUN", "day-of-week 'FUN' is not a number 0-7 or a name SUN-SAT"),
        ("MON * * * *", "minute 'MON' is not a number 0-59"),
        ("0 0 JAN * *", "day-of-month 'JAN' is not a number 1-31"),
        ("*/0 * * * *", "minute step '0' in '*/0' must be a whole number of 1 or more"),
        ("*/x * * * *", "minute step 'x' in '*/x' must be a whole number of 1 or more"),
        ("*/ * * * *", "minute step '' in '*/' must be a whole number of 1 or more"),
        ("0 17-9 * * *", "hour range '17-9' runs backwards; write it as two ranges ('17-23,0-9')"),
        ("0 0 * * FRI-MON", "day-of-week range 'FRI-MON' runs backwards"),
        ("1,,2 * * * *", "minute field '1,,2' has an empty list item"),
        ("0, * * * *", "minute field '0,' has an empty list item"),
        ("-1 * * * *", "minute '-1' is not a number, a range a-b or '*'"),
        ("1- * * * *", "minute '1-' is not a number, a range a-b or '*'"),
        ("1-2-3 * * * *", "minute '2-3' is not a number 0-59"),
        ("1.5 * * * *", "minute '1.5' is not a number 0-59"),
        ("\u00b2 * * * *", "minute '\u00b2' is not a number 0-59"),
        ("0 " + "9" * 5000 + " * * *", "hour " + "9" * 5000 + " is out of range 0-23"),
        ("*/\u00b2 * * * *", "minute step '\u00b2' in '*/\u00b2' must be a whole number"),
        ("@daily", "it has 1 fields, not five"),
    ],
)
def test_invalid_expressions_say_why(text, reason):
    with pytest.raises(ValueError) as err:
        Cron.parse(text)
    assert reason in str(err.value)


# --- cron matching and searching --------------------------------------------------------------


def test_matches_the_minute_holding_a_time():
    cron = Cron.parse("0 9 * * MON-FRI")
    assert cron.matches(at(2026, 12, 3, 9, 0))  # a Thursday
    assert cron.matches(at(2026, 12, 3, 9, 0, 59))
    assert not cron.matches(at(2026, 12, 3, 9, 1))
    assert not cron.matches(at(2026, 12, 6, 9, 0))  # a Sunday
    assert not cron.matches(at(2026, 12, 3, 10, 0))


def test_next_after_is_strictly_after():
    cron = Cron.parse("*/15 * * * *")
    assert cron.next_after(at(2026, 12, 3, 10, 14, 59)) == at(2026, 12, 3, 10, 15)
    assert cron.next_after(at(2026, 12, 3, 10, 15)) == at(2026, 12, 3, 10, 30)
    assert cron.next_after(at(2026, 12, 3, 10, 15, 30)) == at(2026, 12, 3, 10, 30)
    assert cron.next_after(at(2026, 12, 3, 23, 50)) == at(2026, 12, 4, 0, 0)


def test_latest_at_or_before_includes_the_current_minute():
    cron = Cron.parse("*/15 * * * *")
    assert cron.latest_at_or_before(at(2026, 12, 3, 10, 15)) == at(2026, 12, 3, 10, 15)
    assert cron.latest_at_or_before(at(2026, 12, 3, 10, 15, 59)) == at(2026, 12, 3, 10, 15)
    assert cron.latest_at_or_before(at(2026, 12, 3, 10, 14, 59)) == at(2026, 12, 3, 10, 0)
    assert cron.latest_at_or_before(at(2026, 12, 4, 0, 5)) == at(2026, 12, 4, 0, 0)
    assert cron.latest_at_or_before(at(2026, 12, 3, 23, 59)) == at(2026, 12, 3, 23, 45)


def test_searches_cross_year_boundaries():
    new_year = Cron.parse("0 0 1 1 *")
    assert new_year.next_after(at(2026, 12, 31, 23, 59, 30)) == at(2027, 1, 1)
    assert new_year.next_after(at(2027, 1, 1)) == at(2028, 1, 1)
    assert new_year.latest_at_or_before(at(2027, 1, 1)) == at(2027, 1, 1)
    assert new_year.latest_at_or_before(at(2026, 12, 31, 23, 59)) == at(2026, 1, 1)
    last_minute = Cron.parse("59 23 31 12 *")
    assert last_minute.latest_at_or_before(at(2027, 6, 1)) == at(2026, 12, 31, 23, 59)
    assert last_minute.next_after(at(2027, 1, 1)) == at(2027, 12, 31, 23, 59)


def test_searches_cross_month_boundaries_and_skip_short_months():
    cron = Cron.parse("0 12 31 * *")
    assert cron.next_after(at(2026, 4, 1)) == at(2026, 5, 31, 12)  # April has 30 days
    assert cron.latest_at_or_before(at(2026, 5, 30)) == at(2026, 3, 31, 12)
    quarterly = Cron.parse("30 6 1 JAN,APR,JUL,OCT *")
    assert quarterly.next_after(at(2026, 10, 1, 6, 30)) == at(2027, 1, 1, 6, 30)
    assert quarterly.latest_at_or_before(at(2026, 9, 30, 23, 59)) == at(2026, 7, 1, 6, 30)
    assert quarterly.latest_at_or_before(at(2026, 3, 1)) == at(2026, 1, 1, 6, 30)


def test_weekdays_skip_the_weekend_both_ways():
    cron = Cron.parse("0 9 * * MON-FRI")
    friday_evening = at(2026, 12, 4, 18)
    monday_morning = at(2026, 12, 7, 8)
    assert cron.next_after(friday_evening) == at(2026, 12, 7, 9)
    assert cron.latest_at_or_before(monday_morning) == at(2026, 12, 4, 9)


def test_february_29():
    leap = Cron.parse("0 0 29 2 *")
    assert leap.next_after(at(2026, 3, 1)) == at(2028, 2, 29)
    assert leap.latest_at_or_before(at(2026, 3, 1)) == at(2024, 2, 29)
    assert leap.latest_at_or_before(at(2024, 2, 29, 0, 0, 30)) == at(2024, 2, 29)
    # 2100 is not a leap year: the longest gap, which the search still spans.
    assert leap.next_after(at(2096, 3, 1)) == at(2104, 2, 29)
    assert leap.latest_at_or_before(at(2104, 2, 28)) == at(2096, 2, 29)


def test_day_of_month_or_day_of_week_when_both_are_restricted():
    cron = Cron.parse("0 0 13 * FRI")  # every Friday, and every 13th
    fridays_and_13th = []
    t = at(2026, 12, 1)
    for _ in range(4):
        t = cron.next_after(t)
        fridays_and_13th.append(t)
    assert fridays_and_13th == [
        at(2026, 12, 4),  # Friday
        at(2026, 12, 11),  # Friday
        at(2026, 12, 13),  # Sunday the 13th
        at(2026, 12, 18),  # Friday
    ]
    assert cron.matches(at(2026, 12, 13))
    assert cron.latest_at_or_before(at(2026, 12, 12, 23, 59)) == at(2026, 12, 11)


def test_day_of_month_and_day_of_week_when_one_is_a_star():
    fridays = Cron.parse("0 0 * * FRI")
    assert fridays.next_after(at(2026, 12, 1)) == at(2026, 12, 4)
    # '*/2' starts with a star, so (as in Vixie cron) both must match: odd-day Fridays.
    odd_fridays = Cron.parse("0 0 */2 * FRI")
    assert odd_fridays.next_after(at(2026, 12, 1)) == at(2026, 12, 11)
    thirteenth = Cron.parse("0 0 13 * *")
    assert thirteenth.next_after(at(2026, 12, 1)) == at(2026, 12, 13)


@pytest.mark.parametrize("text", ["0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 31 FEB *"])
def test_impossible_expressions_give_none_quickly(text):
    cron = Cron.parse(text)
    started = time.perf_counter()
    assert cron.next_after(at(2026, 1, 1)) is None
    assert cron.latest_at_or_before(at(2026, 1, 1)) is None
    assert time.perf_counter() - started < 0.5


def test_searches_stop_at_the_edges_of_time():
    new_year = Cron.parse("0 0 1 1 *")
    assert new_year.next_after(at(9999, 6, 1)) is None
    assert new_year.latest_at_or_before(datetime(1, 6, 1, tzinfo=UTC).timestamp()) == (
        datetime(1, 1, 1, tzinfo=UTC).timestamp()
    )
    december = Cron.parse("0 0 1 12 *")
    assert december.latest_at_or_before(datetime(1, 6, 1, tzinfo=UTC).timestamp()) is None


@pytest.mark.parametrize(
    "text",
    [
        "*/7 9-17 * * MON-FRI",
        "0,45 */5 1,15 * SUN",
        "59 23 * * *",
        "15 0-3 28-31 * *",
        "0 12 * * 6,7",
    ],
)
def test_searches_agree_with_minute_by_minute_matching(text):
    cron = Cron.parse(text)
    start, minutes = at(2026, 2, 25, 22), 6 * 24 * 60  # across the end of February
    matching = [start + 60 * i for i in range(minutes) if cron.matches(start + 60 * i)]
    forwards, t = [], start - 1
    while (t := cron.next_after(t)) is not None and t < start + 60 * minutes:
        forwards.append(t)
    assert forwards == matching
    backwards, t = [], start + 60 * (minutes - 1)
    while (t := cron.latest_at_or_before(t)) is not None and t >= start:
        backwards.append(t)
        t -= 1
    assert backwards == matching[::-1]


# --- check_option -----------------------------------------------------------------------------


@pytest.mark.parametrize("option", ["MinSize", "MaxSize", "DesiredCapacity"])
@pytest.mark.parametrize(
    ("value", "normal"), [("3", "3"), (" 03 ", "3"), ("0", "0"), ("100", "100")]
)
def test_sizes_are_normalised(option, value, normal):
    assert check_option("Nightly", option, value) == normal


@pytest.mark.parametrize("value", ["101", "-1", "two", "", "1.5", "+2", "\u00b2", "9" * 5000])
def test_sizes_must_be_counts(value):
    with pytest.raises(InvalidInput) as err:
        check_option("Nightly", "MinSize", value)
    assert err.value.message == (
        f"{NAMESPACE}:Nightly:MinSize {value!r} is not a whole number between 0 and 100. "
        "Give a number of instances, for example '2'."
    )


@pytest.mark.parametrize(
    ("value", "normal"),
    [
        ("2026-12-03T09:00:00Z", "2026-12-03T09:00:00Z"),
        ("2026-12-03T09:00:00", "2026-12-03T09:00:00Z"),  # no Z: UTC
        ("2026-12-03T09:00", "2026-12-03T09:00:00Z"),
        ("2026-12-03t09:00:00z", "2026-12-03T09:00:00Z"),
        (" 2026-12-03T09:00:00Z ", "2026-12-03T09:00:00Z"),
        ("2026-12-03T10:30:00+01:30", "2026-12-03T09:00:00Z"),
        ("2026-12-03T04:00:00-0500", "2026-12-03T09:00:00Z"),
        ("2026-12-31T23:30:00-01:00", "2027-01-01T00:30:00Z"),
        ("2028-02-29T00:00:00Z", "2028-02-29T00:00:00Z"),
    ],
)
@pytest.mark.parametrize("option", ["StartTime", "EndTime"])
def test_times_are_normalised_to_utc(option, value, normal):
    assert check_option("Nightly", option, value) == normal


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("tomorrow", "it is not of the form YYYY-MM-DDTHH:MM:SSZ"),
        ("2026-12-03", "it is not of the form YYYY-MM-DDTHH:MM:SSZ"),
        ("2026-12-03 09:00:00Z", "it is not of the form YYYY-MM-DDTHH:MM:SSZ"),
        ("2026-12-03T09:00:00.5Z", "it is not of the form YYYY-MM-DDTHH:MM:SSZ"),
        ("2026-02-29T00:00:00Z", "it is not a real date and time (day is out of range"),
        ("2026-12-03T24:00:00Z", "it is not a real date and time (hour must be in 0..23)"),
        ("2026-13-03T09:00:00Z", "it is not a real date and time (month must be in 1..12)"),
        ("2026-12-03T09:00:00+25:00", "its offset +25:00 is not a valid UTC offset"),
    ],
)
def test_bad_times_say_why(value, reason):
    with pytest.raises(InvalidInput) as err:
        check_option("Nightly", "StartTime", value)
    assert err.value.message.startswith(
        f"{NAMESPACE}:Nightly:StartTime {value!r} is not a valid time: {reason}"
    )
    assert err.value.message.endswith("Use ISO 8601 in UTC, for example '2026-12-03T09:00:00Z'.")


def test_recurrence_is_whitespace_collapsed():
    assert check_option("Nightly", "Recurrence", "  0   9 * *\tMON-FRI ") == "0 9 * * MON-FRI"


def test_a_bad_recurrence_names_the_key_the_problem_and_the_fix():
    with pytest.raises(InvalidInput) as err:
        check_option("Nightly", "Recurrence", "0 25 * * *")
    assert err.value.message == (
        "aws:autoscaling:scheduledaction:Nightly:Recurrence '0 25 * * *' is not a valid cron "
        "expression: hour 25 is out of range 0-23. Use five fields: minute hour day-of-month "
        "month day-of-week, in UTC (for example '0 9 * * MON-FRI')."
    )


@pytest.mark.parametrize(
    ("value", "normal"), [("true", "true"), ("TRUE", "true"), (" False ", "false")]
)
def test_suspend_is_lower_cased(value, normal):
    assert check_option("Nightly", "Suspend", value) == normal


@pytest.mark.parametrize("value", ["yes", "1", ""])
def test_suspend_is_true_or_false(value):
    with pytest.raises(InvalidInput) as err:
        check_option("Nightly", "Suspend", value)
    assert err.value.message == (
        f"{NAMESPACE}:Nightly:Suspend {value!r} is not true or false. Use true to pause the "
        "action, false to let it run."
    )


@pytest.mark.parametrize("resource", ["Scale-Up_1.x", "a", "A" * 255])
def test_good_resource_names(resource):
    assert check_option(resource, "MinSize", "1") == "1"


@pytest.mark.parametrize("resource", ["", "A" * 256, "bad name", "a:b", "naïve", "a/b"])
def test_bad_resource_names(resource):
    with pytest.raises(InvalidInput) as err:
        check_option(resource, "MinSize", "1")
    assert err.value.message.startswith(f"Scheduled action name {resource!r} (in ")
    assert err.value.message.endswith(
        "is not valid; use 1 to 255 letters, digits, '-', '_' or '.'."
    )


def test_unknown_options_list_the_known_ones():
    with pytest.raises(InvalidInput) as err:
        check_option("Nightly", "MinSzie", "1")
    assert err.value.message == (
        f"Unknown option 'MinSzie' for scheduled action Nightly (in {NAMESPACE}:Nightly:MinSzie). "
        "Known options: MinSize, MaxSize, DesiredCapacity, StartTime, EndTime, Recurrence, Suspend."
    )
    assert OPTIONS == (
        "MinSize",
        "MaxSize",
        "DesiredCapacity",
        "StartTime",
        "EndTime",
        "Recurrence",
        "Suspend",
    )


# --- actions_from -----------------------------------------------------------------------------


def test_actions_are_built_from_settings_sorted_by_name():
    values = {
        key("Nightly", "MinSize"): "1",
        key("Nightly", "MaxSize"): " 2",
        key("Nightly", "Recurrence"): "0  2 * * *",
        key("Nightly", "EndTime"): "2027-01-01T00:00:00",
        key("Launch", "DesiredCapacity"): "5",
        key("Launch", "StartTime"): "2026-12-03T09:00:00Z",
        key("Launch", "Suspend"): "TRUE",
        "aws:autoscaling:asg:MinSize": "1",
        "aws:elasticbeanstalk:application:environment:X": "not a number",
    }
    assert actions_from(values) == [
        ScheduledAction(
            name="Launch",
            min_size=None,
            max_size=None,
            desired=5,
            start=at(2026, 12, 3, 9),
            end=None,
            recurrence=None,
            suspended=True,
        ),
        ScheduledAction(
            name="Nightly",
            min_size=1,
            max_size=2,
            desired=None,
            start=None,
            end=at(2027, 1, 1),
            recurrence="0 2 * * *",
            suspended=False,
        ),
    ]


def test_no_actions_without_settings_in_the_namespace():
    assert actions_from({"aws:autoscaling:asg:MinSize": "1"}) == []
    assert actions_from({}) == []


def test_a_bad_setting_is_refused_with_its_key():
    with pytest.raises(InvalidInput) as err:
        actions_from({key("Nightly", "Recurrence"): "0 25 * * *", key("Nightly", "MinSize"): "1"})
    assert "Nightly:Recurrence '0 25 * * *' is not a valid cron expression" in err.value.message


@pytest.mark.parametrize("bad", [f"{NAMESPACE}:Nightly", f"{NAMESPACE}::MinSize"])
def test_a_key_without_a_resource_is_refused(bad):
    with pytest.raises(InvalidInput) as err:
        actions_from({bad: "1"})
    assert err.value.message == (
        f"Setting {bad!r} names no scheduled action; write it as {NAMESPACE}:RESOURCE:OPTION "
        f"(for example {NAMESPACE}:Nightly:MinSize)."
    )


WHERE = f"Scheduled action Nightly ({NAMESPACE}:Nightly)"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"Recurrence": "0 2 * * *", "Suspend": "false"},
            f"{WHERE} sets no size. Give at least one of MinSize, MaxSize or DesiredCapacity.",
        ),
        (
            {"MinSize": "1", "EndTime": "2027-01-01T00:00:00Z"},
            f"{WHERE} has neither StartTime nor Recurrence, so it would never run. Give "
            "StartTime for a one-time action, or Recurrence (a cron expression in UTC) for a "
            "recurring one.",
        ),
        (
            {"MinSize": "3", "MaxSize": "2", "Recurrence": "0 2 * * *"},
            f"{WHERE} has MinSize 3 above MaxSize 2. Lower MinSize or raise MaxSize.",
        ),
        (
            {"MinSize": "2", "DesiredCapacity": "1", "Recurrence": "0 2 * * *"},
            f"{WHERE} has DesiredCapacity 1 below its MinSize 2. Raise DesiredCapacity or lower "
            "MinSize.",
        ),
        (
            {"MaxSize": "2", "DesiredCapacity": "3", "Recurrence": "0 2 * * *"},
            f"{WHERE} has DesiredCapacity 3 above its MaxSize 2. Lower DesiredCapacity or raise "
            "MaxSize.",
        ),
        (
            {
                "MinSize": "1",
                "Recurrence": "0 2 * * *",
                "StartTime": "2026-12-03T09:00:00",
                "EndTime": "2026-12-03T09:00:00Z",
            },
            f"{WHERE} has EndTime 2026-12-03T09:00:00Z, which is not after its StartTime "
            "2026-12-03T09:00:00Z. Move EndTime later or remove it.",
        ),
        (
            {
                "MinSize": "1",
                "StartTime": "2026-12-03T09:00:00Z",
                "EndTime": "2026-12-01T00:00:00Z",
            },
            f"{WHERE} has EndTime 2026-12-01T00:00:00Z, which is not after its StartTime "
            "2026-12-03T09:00:00Z. Move EndTime later or remove it.",
        ),
    ],
)
def test_an_action_must_be_whole(options, message):
    values = {key("Nightly", option): value for option, value in options.items()}
    values[key("Alright", "MinSize")] = "1"
    values[key("Alright", "Recurrence")] = "0 2 * * *"
    with pytest.raises(InvalidInput) as err:
        actions_from(values)
    assert err.value.message == message


@pytest.mark.parametrize(
    "options",
    [
        {"MinSize": "2", "DesiredCapacity": "2", "StartTime": "2026-12-03T09:00:00Z"},
        {"MaxSize": "4", "DesiredCapacity": "4", "Recurrence": "0 2 * * *"},
        {"MinSize": "2", "MaxSize": "2", "DesiredCapacity": "2", "Recurrence": "0 2 * * *"},
        {"DesiredCapacity": "0", "Recurrence": "0 2 * * *", "EndTime": "2027-01-01T00:00:00Z"},
        {"MinSize": "0", "Recurrence": "0 0 30 2 *", "Suspend": "true"},
    ],
)
def test_whole_actions_are_accepted(options):
    values = {key("Nightly", option): value for option, value in options.items()}
    assert [a.name for a in actions_from(values)] == ["Nightly"]


# --- firings ----------------------------------------------------------------------------------


def test_a_one_time_action_fires_once_at_its_start():
    launch = action(start=at(2026, 12, 3, 9))
    before, then, after = at(2026, 12, 3, 8, 59), at(2026, 12, 3, 9), at(2027, 6, 1)
    assert last_firing(launch, before) is None
    assert next_firing(launch, before) == then
    assert last_firing(launch, then) == then
    assert next_firing(launch, then) is None
    assert last_firing(launch, after) == then
    assert next_firing(launch, after) is None


def test_a_one_time_action_ignores_its_end_time():
    launch = action(start=at(2026, 12, 3, 9), end=at(2026, 12, 4))
    assert last_firing(launch, at(2027, 1, 1)) == at(2026, 12, 3, 9)


def test_a_recurring_action_without_bounds():
    nightly = action(recurrence="0 2 * * *")
    now = at(2026, 12, 3, 3)
    assert last_firing(nightly, now) == at(2026, 12, 3, 2)
    assert next_firing(nightly, now) == at(2026, 12, 4, 2)
    assert last_firing(nightly, at(2026, 12, 3, 2)) == at(2026, 12, 3, 2)
    assert next_firing(nightly, at(2026, 12, 3, 2)) == at(2026, 12, 4, 2)


def test_a_recurring_action_fires_only_between_start_and_end():
    nightly = action(recurrence="0 2 * * *", start=at(2026, 12, 5), end=at(2026, 12, 10))
    assert last_firing(nightly, at(2026, 12, 3)) is None
    assert next_firing(nightly, at(2026, 12, 3)) == at(2026, 12, 5, 2)
    assert last_firing(nightly, at(2026, 12, 7, 12)) == at(2026, 12, 7, 2)
    assert next_firing(nightly, at(2026, 12, 7, 12)) == at(2026, 12, 8, 2)
    assert last_firing(nightly, at(2026, 12, 12)) == at(2026, 12, 9, 2)
    assert next_firing(nightly, at(2026, 12, 9, 3)) is None
    assert next_firing(nightly, at(2026, 12, 12)) is None


def test_start_and_end_are_inclusive():
    nightly = action(recurrence="0 2 * * *", start=at(2026, 12, 5, 2), end=at(2026, 12, 10, 2))
    assert next_firing(nightly, at(2026, 12, 1)) == at(2026, 12, 5, 2)
    assert last_firing(nightly, at(2026, 12, 5, 2)) == at(2026, 12, 5, 2)
    assert last_firing(nightly, at(2026, 12, 5, 1, 59)) is None
    assert next_firing(nightly, at(2026, 12, 9, 3)) == at(2026, 12, 10, 2)
    assert next_firing(nightly, at(2026, 12, 10, 2)) is None
    assert last_firing(nightly, at(2027, 1, 1)) == at(2026, 12, 10, 2)


def test_a_start_with_seconds_skips_the_minute_it_falls_in():
    nightly = action(recurrence="0 2 * * *", start=at(2026, 12, 5, 2, 0, 30))
    assert next_firing(nightly, at(2026, 12, 3)) == at(2026, 12, 6, 2)
    assert last_firing(nightly, at(2026, 12, 5, 3)) is None
    assert last_firing(nightly, at(2026, 12, 6, 3)) == at(2026, 12, 6, 2)


def test_a_suspended_action_never_fires():
    for suspended in (
        action(start=at(2026, 12, 3, 9), suspended=True),
        action(recurrence="* * * * *", suspended=True),
    ):
        assert last_firing(suspended, at(2026, 12, 3, 10)) is None
        assert next_firing(suspended, at(2026, 12, 3, 8)) is None


def test_an_impossible_recurrence_never_fires():
    never = action(recurrence="0 0 30 2 *")
    assert last_firing(never, at(2026, 12, 3)) is None
    assert next_firing(never, at(2026, 12, 3)) is None


MORNING = action("Morning", min_size=3, max_size=6, recurrence="0 8 * * *")
EVENING = action("Evening", min_size=1, max_size=2, recurrence="0 20 * * *")


def test_in_force_picks_the_latest_firing():
    actions = [MORNING, EVENING]
    assert in_force(actions, at(2026, 12, 3, 12)) == Firing(MORNING, at(2026, 12, 3, 8))
    assert in_force(actions, at(2026, 12, 3, 21)) == Firing(EVENING, at(2026, 12, 3, 20))
    assert in_force(actions, at(2026, 12, 3, 7)) == Firing(EVENING, at(2026, 12, 2, 20))
    launch = action("Launch", desired=4, start=at(2026, 12, 3, 10))
    assert in_force([*actions, launch], at(2026, 12, 3, 12)) == Firing(launch, at(2026, 12, 3, 10))
    assert in_force([*actions, launch], at(2026, 12, 3, 9)) == Firing(MORNING, at(2026, 12, 3, 8))


def test_in_force_skips_suspended_and_unfired_actions():
    paused = action("Paused", recurrence="* * * * *", suspended=True)
    later = action("Later", start=at(2027, 1, 1))
    assert in_force([paused, later], at(2026, 12, 3)) is None
    assert in_force([], at(2026, 12, 3)) is None
    assert in_force([paused, MORNING], at(2026, 12, 3, 12)) == Firing(MORNING, at(2026, 12, 3, 8))


def test_in_force_breaks_ties_by_name_the_last_name_wins():
    alpha = action("Alpha", min_size=1, recurrence="0 8 * * *")
    beta = action("Beta", min_size=2, start=at(2026, 12, 3, 8))
    assert in_force([beta, alpha], at(2026, 12, 3, 9)) == Firing(beta, at(2026, 12, 3, 8))
    assert in_force([alpha, beta], at(2026, 12, 3, 9)) == Firing(beta, at(2026, 12, 3, 8))


def test_upcoming_merges_firings_by_time_up_to_the_limit():
    launch = action("Launch", desired=4, start=at(2026, 12, 4, 9))
    paused = action("Paused", recurrence="* * * * *", suspended=True)
    got = upcoming([MORNING, EVENING, launch, paused], at(2026, 12, 3, 12))
    assert [(f.action.name, f.at) for f in got] == [
        ("Evening", at(2026, 12, 3, 20)),
        ("Morning", at(2026, 12, 4, 8)),
        ("Launch", at(2026, 12, 4, 9)),
        ("Evening", at(2026, 12, 4, 20)),
        ("Morning", at(2026, 12, 5, 8)),
    ]
    got = upcoming([MORNING, EVENING], at(2026, 12, 3, 12), limit=2)
    assert [(f.action.name, f.at) for f in got] == [
        ("Evening", at(2026, 12, 3, 20)),
        ("Morning", at(2026, 12, 4, 8)),
    ]


def test_upcoming_repeats_a_recurring_action():
    got = upcoming([MORNING], at(2026, 12, 3, 12), limit=3)
    assert got == [Firing(MORNING, at(2026, 12, d, 8)) for d in (4, 5, 6)]


def test_upcoming_stops_when_nothing_more_fires():
    ending = action("Ending", recurrence="0 8 * * *", end=at(2026, 12, 5, 8))
    launch = action("Launch", start=at(2026, 12, 4, 9))
    got = upcoming([ending, launch], at(2026, 12, 3, 12), limit=10)
    assert [(f.action.name, f.at) for f in got] == [
        ("Ending", at(2026, 12, 4, 8)),
        ("Launch", at(2026, 12, 4, 9)),
        ("Ending", at(2026, 12, 5, 8)),
    ]
    assert upcoming([MORNING], at(2026, 12, 3), limit=0) == []
    assert upcoming([], at(2026, 12, 3)) == []


def test_upcoming_breaks_ties_by_name():
    beta = action("Beta", recurrence="0 8 * * *")
    alpha = action("Alpha", recurrence="0 8 * * *")
    got = upcoming([beta, alpha], at(2026, 12, 3, 12), limit=2)
    assert [f.action.name for f in got] == ["Alpha", "Beta"]


def test_describe_says_what_is_set_and_when():
    nightly = action("Nightly", min_size=1, max_size=2, recurrence="0 2 * * *")
    assert describe(Firing(nightly, at(2026, 12, 3, 2))) == (
        "Nightly sets MinSize 1, MaxSize 2 at 2026-12-03 02:00 UTC"
    )
    launch = action("Launch", min_size=None, desired=4, start=at(2026, 12, 3, 9, 30, 15))
    assert describe(Firing(launch, launch.start)) == (
        "Launch sets DesiredCapacity 4 at 2026-12-03 09:30 UTC"
    )
    full = action("Full", min_size=1, max_size=5, desired=3, start=at(2026, 12, 3))
    assert describe(Firing(full, at(2026, 12, 3) + timedelta(hours=1).total_seconds())) == (
        "Full sets MinSize 1, MaxSize 5, DesiredCapacity 3 at 2026-12-03 01:00 UTC"
    )
