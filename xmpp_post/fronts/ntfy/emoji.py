"""ntfy's tags that stand for an emoji: a subset of the gemoji short codes ntfy converts.

A tag that is a short code here (case-insensitive) is shown as its emoji in front of the
title (or of the text, when there is no title); any other tag is listed as text.
"""

from __future__ import annotations

# Grouped by what alerts use them for; each value is the emoji as ntfy's table gives it.
EMOJI: dict[str, str] = {
    # alerts and states
    "warning": "⚠️", "rotating_light": "🚨", "triangular_flag_on_post": "🚩",
    "skull": "💀", "skull_and_crossbones": "☠️", "fire": "🔥", "boom": "💥", "zap": "⚡",
    "x": "❌", "heavy_multiplication_x": "✖️", "no_entry": "⛔", "no_entry_sign": "🚫",
    "stop_sign": "🛑", "construction": "🚧", "exclamation": "❗",
    "heavy_exclamation_mark": "❗", "bangbang": "‼️", "grey_exclamation": "❕",
    "question": "❓", "grey_question": "❔", "information_source": "\u2139\ufe0f", "sos": "🆘",
    "heavy_check_mark": "✔️", "white_check_mark": "✅", "ballot_box_with_check": "☑️",
    "ok": "🆗", "new": "🆕", "up": "🆙", "100": "💯",
    "red_circle": "🔴", "orange_circle": "🟠", "yellow_circle": "🟡",
    "green_circle": "🟢", "large_blue_circle": "🔵", "white_circle": "⚪",
    "black_circle": "⚫", "bell": "🔔", "no_bell": "🔕", "loudspeaker": "📢", "mega": "📣",
    "loud_sound": "🔊", "mute": "🔇", "speech_balloon": "💬",
    # time
    "hourglass": "⌛", "hourglass_flowing_sand": "⏳", "alarm_clock": "⏰",
    "stopwatch": "⏱️", "timer_clock": "⏲️", "calendar": "📆", "date": "📅",
    # machines and work
    "computer": "💻", "desktop_computer": "🖥️", "keyboard": "⌨️", "printer": "🖨️",
    "iphone": "📱", "phone": "☎️", "satellite": "📡", "cd": "💿", "dvd": "📀",
    "floppy_disk": "💾", "minidisc": "💽", "electric_plug": "🔌", "battery": "🔋",
    "bulb": "💡", "gear": "⚙️", "wrench": "🔧", "hammer": "🔨",
    "hammer_and_wrench": "🛠️", "bug": "🐛", "package": "📦", "rocket": "🚀",
    "robot": "🤖", "lock": "🔒", "unlock": "🔓", "key": "🔑", "shield": "🛡️",
    "link": "🔗", "paperclip": "📎", "pushpin": "📌", "mag": "🔍", "memo": "📝",
    "pencil2": "✏️", "clipboard": "📋", "file_folder": "📁", "open_file_folder": "📂",
    "books": "📚", "wastebasket": "🗑️", "email": "📧", "envelope": "✉️",
    "inbox_tray": "📥", "outbox_tray": "📤", "chart_with_upwards_trend": "📈",
    "chart_with_downwards_trend": "📉", "bar_chart": "📊", "globe_with_meridians": "🌐",
    "recycle": "♻️", "arrows_counterclockwise": "🔄", "repeat": "🔁",
    "arrow_up": "⬆️", "arrow_down": "⬇️", "checkered_flag": "🏁",
    "money_with_wings": "💸", "moneybag": "💰", "dollar": "💵",
    # home and weather
    "house": "🏠", "door": "🚪", "car": "🚗", "sunny": "☀️", "cloud": "☁️",
    "umbrella": "☔", "snowflake": "❄️", "thermometer": "🌡️", "droplet": "💧",
    # people and feelings
    "+1": "👍", "thumbsup": "👍", "-1": "👎", "thumbsdown": "👎", "clap": "👏",
    "wave": "👋", "eyes": "👀", "facepalm": "🤦", "tada": "🎉", "partying_face": "🥳",
    "confetti_ball": "🎊", "trophy": "🏆", "star": "⭐", "sparkles": "✨", "heart": "❤️",
    "broken_heart": "💔", "grinning": "😀", "smile": "😄", "slightly_smiling_face": "🙂",
    "sunglasses": "😎", "thinking": "🤔", "disappointed": "😞", "cry": "😢", "sob": "😭",
    "scream": "😱", "rage": "😡", "sleeping": "😴", "ghost": "👻",
    # animals
    "dog": "🐶", "cat": "🐱", "horse": "🐴", "unicorn": "🦄",
}


def emoji_for(tag: str) -> str | None:
    """The emoji ntfy shows for ``tag``, or None when the tag is plain text."""
    return EMOJI.get(tag.strip().lower())
