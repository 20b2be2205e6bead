"""Text shaping for the terminal: inline LaTeX made readable, titles shortened at a word boundary."""

from __future__ import annotations

import re

_SYMBOLS = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "theta": "θ", "lambda": "λ",
    "mu": "μ", "pi": "π", "sigma": "σ", "tau": "τ", "phi": "φ", "omega": "ω", "Sigma": "Σ", "Delta": "Δ",
    "sum": "Σ", "prod": "Π", "int": "∫", "infty": "∞", "partial": "∂", "nabla": "∇",
    "cdot": "·", "times": "×", "div": "÷", "pm": "±", "leq": "≤", "le": "≤", "geq": "≥", "ge": "≥",
    "neq": "≠", "ne": "≠", "approx": "≈", "sim": "~", "propto": "∝", "in": "∈", "notin": "∉", "subset": "⊂",
    "cup": "∪", "cap": "∩", "forall": "∀", "exists": "∃", "to": "→", "rightarrow": "→", "leftarrow": "←",
    "Rightarrow": "⇒", "mid": "|", "ldots": "…", "cdots": "⋯", "log": "log", "exp": "exp", "ln": "ln",
    "max": "max", "min": "min", "arg": "arg", "lim": "lim", "sin": "sin", "cos": "cos",
}
_SUP_FROM, _SUP_TO = "0123456789+-=()nT", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿᵀ"
_SUB_FROM, _SUB_TO = "0123456789+-=()", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎"
# Pandoc's rule for inline math: no space just inside the dollars, no digit right after the closing one, so
# "costs $5 and $10" stays as it is.
_MATH = re.compile(r"\$\$(.+?)\$\$|\$(?!\s)([^$\n]+?)(?<!\s)\$(?!\d)|\\\((.+?)\\\)", re.S)
_BRACED = r"\{([^{}]*)\}"


def _script(body: str, sup: bool) -> str:
    """x^{2} -> x², x_{1} -> x₁ where Unicode has the characters; else x^(i+1), x_(ij)."""
    src, dst, mark = (_SUP_FROM, _SUP_TO, "^") if sup else (_SUB_FROM, _SUB_TO, "_")
    if body and all(ch in src for ch in body):
        return body.translate(str.maketrans(src, dst))
    return f"{mark}({body})" if len(body) > 1 else f"{mark}{body}"


def _math_to_text(tex: str) -> str:
    s = tex.strip()
    for _ in range(3):  # nested \frac{\sqrt{a}}{b}: a few passes, innermost first
        s = re.sub(r"\\[dt]?frac" + _BRACED + _BRACED, r"(\1)/(\2)", s)
        s = re.sub(r"\\sqrt" + _BRACED, r"√(\1)", s)
        s = re.sub(r"\\(?:text|mathrm|mathbf|mathit|mathcal|operatorname|boldsymbol)" + _BRACED, r"\1", s)
    s = re.sub(r"\\(left|right|big|Big)\b", "", s)
    s = re.sub(r"\\([A-Za-z]+)", lambda m: _SYMBOLS.get(m.group(1), m.group(1)), s)
    s = re.sub(r"\^" + _BRACED, lambda m: _script(m.group(1), sup=True), s)
    s = re.sub(r"_" + _BRACED, lambda m: _script(m.group(1), sup=False), s)
    s = re.sub(r"\^([0-9nT])", lambda m: _script(m.group(1), sup=True), s)
    s = re.sub(r"_([0-9])", lambda m: _script(m.group(1), sup=False), s)
    s = re.sub(r"\(([A-Za-z0-9]+)\)/\(([A-Za-z0-9]+)\)", r"\1/\2", s)  # (a)/(b) -> a/b for plain atoms
    s = s.replace("\\,", " ").replace("\\;", " ").replace("\\!", "").replace("{", "").replace("}", "")
    return re.sub(r"\s+", " ", s)


def plain_math(text: str) -> str:
    """Inline LaTeX ($...$, $$...$$, \\(...\\)) as readable text: `$P(y|x)$` -> `P(y|x)`,
    `$\\frac{a}{b}$` -> `a/b`, `$x^2 \\leq \\alpha$` -> `x² ≤ α`. Text without math is returned unchanged."""
    if "$" not in text and "\\(" not in text:
        return text
    return _MATH.sub(lambda m: _math_to_text(next(g for g in m.groups() if g is not None)), text)


def shorten(text: str, width: int) -> str:
    """`text` in at most `width` characters, cut at a word boundary with an ellipsis (never mid-word)."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    cut = text[: max(width - 1, 1)]
    space = cut.rfind(" ")
    if space > width // 3:
        cut = cut[:space]
    return cut.rstrip(" ,;:·-") + "…"
