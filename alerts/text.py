"""Human text for a notification, in English or Chinese, short enough for a phone screen.

An energy manager reads these on a phone in a chat app: the first line says what
happened to which machine, then what is wrong in plain words, the evidence, what it
costs per year (kWh, money, CO2) and what to do. Rule ids stay in the generic JSON for
machines; people get names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

RULES: Final[dict[str, tuple[str, str]]] = {
    "idle_running": ("Running idle at no load", "空载运行"),
    "off_shift_running": ("Running outside production hours", "非生产时段运行"),
    "under_loaded": ("Oversized for its load (under-loaded)", "大马拉小车（负载率过低）"),
    "overloaded": ("Overloaded", "过载运行"),
    "voltage_unbalance": ("Supply voltage unbalance", "电压不平衡"),
    "current_unbalance": ("Phase current unbalance", "电流不平衡"),
    "low_power_factor": ("Low power factor", "功率因数偏低"),
    "pump_outside_por": ("Pump/fan far from its best-efficiency flow", "泵/风机偏离高效区运行"),
    "compressor_leak": ("Compressed-air leaks", "压缩空气泄漏"),
    "compressor_unloaded": ("Compressor running unloaded", "空压机空载运行"),
    "transformer_light_load": ("Transformer lightly loaded", "变压器轻载运行"),
}
EVENTS: Final[dict[str, tuple[str, str]]] = {
    "opened": ("New alert", "新告警"),
    "escalated": ("Alert escalated", "告警升级"),
    "resolved": ("Resolved", "已恢复"),
    "reminder": ("Still open", "仍未处理"),
}
SEVERITY: Final[dict[str, tuple[str, str]]] = {
    "info": ("INFO", "提示"),
    "warning": ("WARNING", "警告"),
    "critical": ("CRITICAL", "严重"),
}
EVIDENCE: Final[dict[str, tuple[str, str]]] = {
    "metric": ("measured", "实测值"),
    "threshold": ("threshold", "阈值"),
    "running_hours": ("running h", "运行小时"),
    "p50_load_factor": ("P50 load", "P50 负载率"),
    "p75_load_factor": ("P75 load", "P75 负载率"),
    "energy_kwh": ("energy kWh", "电量 kWh"),
}
_LABELS: Final = {
    "en": ("Device", "Problem", "Evidence", "Waste per year", "Action", "Since", "days"),
    "zh": ("设备", "问题", "依据", "每年浪费", "建议措施", "开始于", "天"),
}


@dataclass(frozen=True)
class Message:
    """A notification as text: `title` for the chat preview, `lines` for the body."""

    title: str
    lines: tuple[str, ...]

    def plain(self) -> str:
        return "\n".join((self.title, *self.lines))

    def markdown(self) -> str:
        return "\n\n".join((f"**{self.title}**", *self.lines))


def kind_word(event: str) -> str:
    """`reminder:2` and `escalated:critical` are stored keys; the word is before the colon."""
    return event.split(":", 1)[0]


def render(alert: dict[str, Any], event: str, language: str) -> Message:
    """The message for one lifecycle event of one alert, in `language` (en or zh)."""
    zh = language == "zh"
    pick = 1 if zh else 0
    device, problem, evidence, waste, action, since, days = _LABELS[language]
    rule = str(alert["rule"])
    rule_name = RULES.get(rule, (rule, rule))[pick]
    severity = SEVERITY.get(str(alert["severity"]), (str(alert["severity"]),) * 2)[pick]
    event_name = EVENTS[kind_word(event)][pick]
    title = f"[{severity}] {event_name}: {rule_name} – {alert['device_id']} ({alert['site']})"
    recommendation = alert.get("recommendation_zh" if zh else "recommendation") or ""
    lines = [
        f"{device}: {alert['device_id']} ({alert['kind']}, {alert['site']})",
        f"{problem}: {rule_name} [{rule}]",
        f"{evidence}: {_evidence(alert.get('evidence'), pick)}",
        f"{waste}: {_waste(alert)}",
        f"{action}: {recommendation}",
        f"{since}: {alert['opened_day']} ({alert['days_breached']} {days})",
    ]
    if kind_word(event) == "resolved":
        lines.insert(0, ("恢复日期" if zh else "Resolved on") + f": {alert['resolved_day']}")
    return Message(title, tuple(lines))


def _evidence(text: Any, pick: int) -> str:
    try:
        values = json.loads(text) if isinstance(text, str) else {}
    except json.JSONDecodeError:
        return str(text)
    parts = []
    for key, value in values.items():
        if value is None:
            continue
        label = EVIDENCE.get(key, (key, key))[pick]
        parts.append(f"{label} {_num(value)}")
    return ", ".join(parts) or "-"


def _waste(alert: dict[str, Any]) -> str:
    kwh, cost, co2 = (
        alert.get(k) for k in ("waste_kwh_per_year", "cost_per_year", "co2_kg_per_year")
    )
    if kwh is None or kwh == 0:
        return "-"
    out = f"{kwh:,.0f} kWh"
    if cost is not None:
        out += f" · {cost:,.0f} {alert.get('currency') or ''}".rstrip()
    if co2 is not None:
        out += f" · {co2 / 1000:,.1f} t CO2"
    return out


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)
