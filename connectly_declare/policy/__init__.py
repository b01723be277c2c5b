"""When a person may be messaged: recipient time zones, local schedules, quiet hours
(:mod:`.zones`, :mod:`.localtime`, :mod:`.timing`) and frequency caps (:mod:`.caps`).

Everything here is offline and deterministic: zones come from the number
(`phonenumbers`' own time-zone data) or from the data, clocks are passed in.
"""
