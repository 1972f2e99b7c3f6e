"""Utilities with their ``node --test`` suites: hand-written ones for common names
(``KNOWN_UTILITIES``), defaults from the signature for the rest."""

from __future__ import annotations

from agentmesh.agents._templates._js import NODE_TEST_HEAD, js_function, type_decls
from agentmesh.agents._templates._types import (
    Member,
    Signature,
    Spec,
    js_check,
    passthrough,
    sample_js,
    spec_types,
)

# Hand-written utilities: name -> (module source, test cases). The tests import the name.
KNOWN_UTILITIES: dict[str, tuple[str, str]] = {
    "formatNumber": (
        """/**
 * Formats a number with thousands separators (en-US, at most two decimals).
 * @param {number} value
 * @returns {string}
 */
export function formatNumber(value) {
  return new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 }).format(value);
}
""",
        """test("formatNumber groups thousands", () => {
  assert.strictEqual(formatNumber(1234567), "1,234,567");
  assert.strictEqual(formatNumber(1234.5), "1,234.5");
  assert.strictEqual(formatNumber(0), "0");
});
""",
    ),
    "formatDate": (
        """/**
 * Formats a date as YYYY-MM-DD (UTC).
 * @param {Date | string} value
 * @returns {string}
 */
export function formatDate(value) {
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) {
    throw new RangeError(`Invalid date: ${String(value)}`);
  }
  return date.toISOString().slice(0, 10);
}
""",
        """test("formatDate formats strings and dates", () => {
  assert.strictEqual(formatDate("2024-03-05T12:00:00Z"), "2024-03-05");
  assert.strictEqual(formatDate(new Date(Date.UTC(2020, 0, 31))), "2020-01-31");
});

test("formatDate rejects invalid dates", () => {
  assert.throws(() => formatDate("not a date"), RangeError);
});
""",
    ),
    "validateEmail": (
        """/**
 * Checks an email address: one @, no spaces, a dot in the domain.
 * @param {string} value
 * @returns {boolean}
 */
export function validateEmail(value) {
  return /^[^\\s@]+@[^\\s@]+\\.[^\\s@]+$/.test(value);
}
""",
        """test("validateEmail accepts addresses", () => {
  assert.strictEqual(validateEmail("ada@example.com"), true);
});

test("validateEmail rejects malformed addresses", () => {
  for (const bad of ["", "ada", "ada@", "@example.com", "ada @example.com", "ada@example"]) {
    assert.strictEqual(validateEmail(bad), false, bad);
  }
});
""",
    ),
    "debounce": (
        """/**
 * Delays a call until the input settles: only the last call within `ms` runs.
 * @template {unknown[]} A
 * @param {(...args: A) => void} fn
 * @param {number} ms
 * @returns {(...args: A) => void}
 */
export function debounce(fn, ms) {
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
""",
        """test("debounce runs the last call once the input settles", async () => {
  /** @type {number[]} */
  const calls = [];
  const debounced = debounce((value) => {
    calls.push(Number(value));
  }, 20);
  debounced(1);
  debounced(2);
  debounced(3);
  assert.deepStrictEqual(calls, []);
  await new Promise((resolve) => setTimeout(resolve, 80));
  assert.deepStrictEqual(calls, [3]);
});
""",
    ),
    "toSeries": (
        """/**
 * Turns records into chart points: x from `xKey` (or the index), y from `yKey`.
 * @param {Array<Record<string, unknown>>} rows
 * @param {string} [xKey]
 * @param {string} [yKey]
 * @returns {Array<{ x: unknown, y: number }>}
 */
export function toSeries(rows, xKey = "x", yKey = "y") {
  return rows.map((row, index) => ({ x: row[xKey] ?? index, y: Number(row[yKey] ?? 0) }));
}
""",
        """test("toSeries maps rows to points", () => {
  const rows = [{ x: "mon", y: 3 }, { y: "4" }];
  assert.deepStrictEqual(toSeries(rows), [{ x: "mon", y: 3 }, { x: 1, y: 4 }]);
  assert.deepStrictEqual(toSeries([{ day: 1, total: 9 }], "day", "total"), [{ x: 1, y: 9 }]);
});
""",
    ),
    "slugify": (
        """/**
 * Lower-case words joined by hyphens, for URLs and ids.
 * @param {string} text
 * @returns {string}
 */
export function slugify(text) {
  return text
    .normalize("NFKD")
    .replace(/[\\u0300-\\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
}
""",
        """test("slugify makes url-safe slugs", () => {
  assert.strictEqual(slugify("  Hello, Wörld! "), "hello-world");
  assert.strictEqual(slugify("Already-a-slug"), "already-a-slug");
});
""",
    ),
    "clamp": (
        """/**
 * Limits a number to the range [min, max].
 * @param {number} value
 * @param {number} min
 * @param {number} max
 * @returns {number}
 */
export function clamp(value, min, max) {
  return Math.min(Math.max(value, min), max);
}
""",
        """test("clamp limits to the range", () => {
  assert.strictEqual(clamp(5, 0, 10), 5);
  assert.strictEqual(clamp(-1, 0, 10), 0);
  assert.strictEqual(clamp(11, 0, 10), 10);
});
""",
    ),
    "truncate": (
        """/**
 * Shortens text to at most `max` characters, ending with an ellipsis when cut.
 * @param {string} text
 * @param {number} max
 * @returns {string}
 */
export function truncate(text, max) {
  return text.length <= max ? text : `${text.slice(0, Math.max(0, max - 1))}…`;
}
""",
        """test("truncate shortens long text only", () => {
  assert.strictEqual(truncate("dashboard", 20), "dashboard");
  assert.strictEqual(truncate("dashboard", 5), "dash…");
});
""",
    ),
    "titleCase": (
        """/**
 * Turns "dashboard-app" or "user_settings" into "Dashboard App" or "User Settings".
 * @param {string} text
 * @returns {string}
 */
export function titleCase(text) {
  return text
    .split(/[\\s_-]+/)
    .filter((word) => word.length > 0)
    .map((word) => word[0].toUpperCase() + word.slice(1))
    .join(" ");
}
""",
        """test("titleCase capitalises each word", () => {
  assert.strictEqual(titleCase("dashboard-app"), "Dashboard App");
  assert.strictEqual(titleCase("user_settings page"), "User Settings Page");
});

test("titleCase of an empty string is empty", () => {
  assert.strictEqual(titleCase(""), "");
});
""",
    ),
}


def utility_module(spec: Spec) -> str:
    """The runnable ``.mjs`` source of a utility (JSDoc-typed)."""
    if spec.name in KNOWN_UTILITIES:
        return KNOWN_UTILITIES[spec.name][0]
    sig = spec.signature or Signature((Member("value", "unknown"),), "unknown")
    names = spec_types(spec)
    out = type_decls(names, ts=False)
    out += [""] if out else []
    out += js_function(spec.name, sig, spec.description or spec.name, False, set(names))
    return "\n".join(out) + "\n"


def utility_test(spec: Spec, module: str) -> str:
    """A ``node --test`` file for the utility, importing it from ``module``."""
    if spec.name in KNOWN_UTILITIES:
        cases = KNOWN_UTILITIES[spec.name][1]
    else:
        sig = spec.signature or Signature((Member("value", "unknown"),), "unknown")
        declared = set(spec_types(spec))
        args = ", ".join(sample_js(p.type, declared) for p in sig.params if not p.optional)
        call = f"{spec.name}({args})"
        returns = sig.returns
        if (first := passthrough(sig, returns)) is not None:
            check = f"assert.deepStrictEqual({call}, {sample_js(first.type, declared)});"
        else:
            check = js_check(returns, call, declared)
        cases = (
            f'test("{spec.name} returns a value of its declared type", () => {{\n  {check}\n}});\n'
        )
    return f'{NODE_TEST_HEAD}import {{ {spec.name} }} from "{module}";\n\n{cases}'
