/* Evaluates XLSForm expressions compiled by surveys/expressions.py, with the same
   rules, so the web form and the server agree. See that module for the AST node kinds
   and the conversion rules; the shared table tests/surveys/expression_cases.json keeps
   the two in step. Plain ES2017, no dependencies. */
(function (root) {
  'use strict';
  const DAY = 864e5, MIN_DAYS = -719162, MAX_DAYS = 2932896;
  const NUM_RE = /^[ \t\r\n]*(-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))[ \t\r\n]*$/;
  const DATE_RE = /^[ \t\r\n]*([0-9]{4})-([0-9]{2})-([0-9]{2})[ \t\r\n]*$/;
  const WS_RE = /[ \t\r\n]+/;
  const MONTHS = 'Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec'.split(' ');
  const WEEKDAYS = 'Sun Mon Tue Wed Thu Fri Sat'.split(' ');
  const pad = (n, w) => String(n).padStart(w, '0');

  // A date value: whole days since 1970-01-01, free of time zones.
  class XDate {
    constructor(days) { this.days = days; }
    ymd() {
      const t = new Date(this.days * DAY);
      return [t.getUTCFullYear(), t.getUTCMonth() + 1, t.getUTCDate()];
    }
    toString() { const d = this.ymd(); return pad(d[0], 4) + '-' + pad(d[1], 2) + '-' + pad(d[2], 2); }
  }

  function ymdDays(y, m, d) {
    if (y < 1 || m < 1 || m > 12 || d < 1) return null;
    const t = new Date(0);
    t.setUTCFullYear(y, m - 1, d);
    return t.getUTCDate() === d ? t.getTime() / DAY : null;
  }

  function dateStringDays(s) {
    const m = DATE_RE.exec(s);
    return m ? ymdDays(+m[1], +m[2], +m[3]) : null;
  }

  function value(raw) {
    if (raw === null || raw === undefined) return '';
    if (Array.isArray(raw)) return raw.map((x) => toString(value(x)));
    if (raw instanceof Date) return new XDate(ymdDays(raw.getFullYear(), raw.getMonth() + 1, raw.getDate()));
    const t = typeof raw;
    return t === 'string' || t === 'number' || t === 'boolean' || raw instanceof XDate ? raw : String(raw);
  }

  function toString(v) {
    if (typeof v === 'string') return v;
    if (typeof v === 'number') return String(v);
    if (typeof v === 'boolean') return v ? 'true' : 'false';
    if (Array.isArray(v)) return v.map(toString).join(' ');
    if (v === null || v === undefined) return '';
    return String(v);
  }

  function toNumber(v) {
    if (typeof v === 'number') return v;
    if (typeof v === 'boolean') return v ? 1 : 0;
    if (v instanceof XDate) return v.days;
    if (v === null || v === undefined) return NaN;
    const s = toString(v), m = NUM_RE.exec(s);
    if (m) return parseFloat(m[1]);
    const d = dateStringDays(s);
    return d === null ? NaN : d;
  }

  function toBoolean(v) {
    if (typeof v === 'boolean') return v;
    if (typeof v === 'number') return v !== 0 && v === v;
    if (typeof v === 'string' || Array.isArray(v)) return v.length > 0;
    if (v instanceof XDate) return true;
    return v !== null && v !== undefined && toBoolean(value(v));
  }

  function days(v) {
    if (v instanceof XDate) return v.days;
    if (typeof v === 'string' || Array.isArray(v)) {
      const d = dateStringDays(toString(v));
      if (d !== null) return d;
    }
    const n = toNumber(v);
    if (!isFinite(n)) return null;
    const d = Math.floor(n);
    return d >= MIN_DAYS && d <= MAX_DAYS ? d : null;
  }

  const tokens = (v) => (Array.isArray(v) ? v : toString(v).split(WS_RE)).filter((x) => x !== '');
  const chars = (v) => Array.from(toString(v));  // code points, as Python counts them
  const isNum = (v) => typeof v === 'number' || v instanceof XDate;
  const whole = (f) => (v) => { const x = toNumber(v); return isFinite(x) ? f(x) : x; };

  function equal(a, b) {
    if (Array.isArray(a)) a = toString(a);
    if (Array.isArray(b)) b = toString(b);
    if (typeof a === 'boolean' || typeof b === 'boolean') return toBoolean(a) === toBoolean(b);
    if (isNum(a) || isNum(b)) return toNumber(a) === toNumber(b);
    return toString(a) === toString(b);
  }

  function round(v, places) {
    const x = toNumber(v);
    let p = places === undefined ? 0 : toNumber(places);
    if (p !== p) return NaN;
    if (!isFinite(x)) return x;
    p = Math.trunc(Math.max(-15, Math.min(15, p)));
    let scale = 1;
    for (let i = 0; i < Math.abs(p); i++) scale *= 10;
    const y = p >= 0 ? x * scale : x / scale;
    if (!isFinite(y)) return x;
    const r = Math.floor(Math.abs(y) + 0.5) * (y < 0 ? -1 : 1);
    return p >= 0 ? r / scale : r * scale;
  }

  function extreme(f, values) {
    const ns = values.map(toNumber);
    return ns.some((n) => n !== n) ? NaN : f(...ns);
  }

  const regexCache = new Map();
  function regex(v, pattern) {
    const p = toString(pattern);
    let re = regexCache.get(p);
    if (re === undefined) {
      try { re = new RegExp(p); } catch (e) { re = null; }
      regexCache.set(p, re);
    }
    return re !== null && re.test(toString(v));
  }

  function substr(v, start, end) {
    const cs = chars(v), n = cs.length;
    const a = toNumber(start), b = end === undefined ? n : toNumber(end);
    if (a !== a || b !== b) return '';
    const clamp = (x) => Math.trunc(Math.max(0, Math.min(n, x)));
    return cs.slice(clamp(a), clamp(b)).join('');
  }

  function selectedAt(v, index) {
    const items = tokens(v), i = toNumber(index);
    return i !== i || i < 0 || i >= items.length ? '' : items[Math.trunc(i)];
  }

  function toDate(v) {
    const d = days(v);
    return d === null ? '' : new XDate(d);
  }

  function formatDate(v, pattern) {
    const n = days(v);
    if (n === null) return '';
    const d = new XDate(n).ymd();
    const fields = {
      Y: pad(d[0], 4), y: pad(d[0] % 100, 2), m: pad(d[1], 2), n: String(d[1]),
      d: pad(d[2], 2), e: String(d[2]), b: MONTHS[d[1] - 1], a: WEEKDAYS[(((n + 4) % 7) + 7) % 7],
    };
    return toString(pattern).replace(/%([A-Za-z0-9])/g, (m, c) => (c in fields ? fields[c] : m));
  }

  // Relational and arithmetic operators work on numbers; IEEE division gives
  // Infinity, -Infinity or NaN for a zero divisor, as XPath requires.
  const num2 = (f) => (a, b) => f(toNumber(a), toNumber(b));
  const BINARY = {
    '=': equal,
    '!=': (a, b) => !equal(a, b),
    '<': num2((x, y) => x < y),
    '<=': num2((x, y) => x <= y),
    '>': num2((x, y) => x > y),
    '>=': num2((x, y) => x >= y),
    '+': num2((x, y) => x + y),
    '-': num2((x, y) => x - y),
    '*': num2((x, y) => x * y),
    'div': num2((x, y) => x / y),
    'mod': num2((x, y) => x % y),
  };

  const CALLS = {
    'not': (v) => !toBoolean(v),
    'true': () => true,
    'false': () => false,
    'boolean': toBoolean,
    'coalesce': (a, b) => (a === '' || (Array.isArray(a) && !a.length) ? b : a),
    'selected': (v, c) => tokens(v).includes(toString(c).replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, '')),
    'selected-at': selectedAt,
    'count-selected': (v) => tokens(v).length,
    'string': toString,
    'string-length': (v) => chars(v).length,
    'concat': (...vs) => vs.map(toString).join(''),
    'contains': (a, b) => toString(a).includes(toString(b)),
    'starts-with': (a, b) => toString(a).startsWith(toString(b)),
    'ends-with': (a, b) => toString(a).endsWith(toString(b)),
    'substr': substr,
    'regex': regex,
    'number': toNumber,
    'int': whole(Math.trunc),
    'round': round,
    'floor': whole(Math.floor),
    'ceiling': whole(Math.ceil),
    'abs': (v) => Math.abs(toNumber(v)),
    'min': (...vs) => extreme(Math.min, vs),
    'max': (...vs) => extreme(Math.max, vs),
    'date': toDate,
    'format-date': formatDate,
    'pow': (a, b) => Math.pow(toNumber(a), toNumber(b)),
    'sqrt': (v) => Math.sqrt(toNumber(v)),
    'exp': (v) => Math.exp(toNumber(v)),
    'log': (v) => Math.log(toNumber(v)),
    'log10': (v) => Math.log10(toNumber(v)),
    'sin': (v) => Math.sin(toNumber(v)),
    'cos': (v) => Math.cos(toNumber(v)),
    'tan': (v) => Math.tan(toNumber(v)),
    'asin': (v) => Math.asin(toNumber(v)),
    'acos': (v) => Math.acos(toNumber(v)),
    'atan': (v) => Math.atan(toNumber(v)),
    'atan2': (a, b) => Math.atan2(toNumber(a), toNumber(b)),
    'pi': () => Math.PI,
  };

  const own = (o, k) => o !== null && o !== undefined && Object.prototype.hasOwnProperty.call(o, k);

  function today(ctx) {
    const t = ctx.today;
    if (t instanceof XDate) return t;
    if (typeof t === 'string' && dateStringDays(t) !== null) return new XDate(dateStringDays(t));
    return value(t instanceof Date ? t : new Date());
  }

  function ev(node, ctx) {
    switch (node[0]) {
      case 'ref': return value(own(ctx.answers, node[1]) ? ctx.answers[node[1]] : null);
      case 'num': case 'str': return node[1];
      case 'op': {
        const op = node[1];
        if (op === 'and') return toBoolean(ev(node[2], ctx)) && toBoolean(ev(node[3], ctx));
        if (op === 'or') return toBoolean(ev(node[2], ctx)) || toBoolean(ev(node[3], ctx));
        return BINARY[op](ev(node[2], ctx), ev(node[3], ctx));
      }
      case 'fn': {
        const name = node[1], args = node[2];
        if (name === 'if') return ev(toBoolean(ev(args[0], ctx)) ? args[1] : args[2], ctx);
        if (name === 'today') return today(ctx);
        if (name === 'once') {
          const kept = value(ctx.current);
          return kept === '' || (Array.isArray(kept) && !kept.length) ? ev(args[0], ctx) : kept;
        }
        if (name === 'random') return (ctx.random || Math.random)();
        return CALLS[name](...args.map((a) => ev(a, ctx)));
      }
      case 'cur': return value(ctx.current);
      case 'col': return value(own(ctx.choice, node[1]) ? ctx.choice[node[1]] : null);
      case 'neg': return -toNumber(ev(node[1], ctx));
    }
    throw new Error('not an expression node: ' + JSON.stringify(node));
  }

  // evaluate(ast, answers, {current, today, choice, random}); `today` may be 'YYYY-MM-DD' or a
  // Date; `random` a function drawing from [0, 1) (Math.random when absent).
  function evaluate(ast, answers, opts) {
    if (ast === null || ast === undefined) return null;
    const o = opts || {};
    return ev(ast, { answers: answers || {}, current: o.current, today: o.today, choice: o.choice, random: o.random });
  }

  function collect(node, kind, found) {
    if (!node) return found;
    if (node[0] === kind) found.add(node[1]);
    else if (node[0] === 'op') { collect(node[2], kind, found); collect(node[3], kind, found); }
    else if (node[0] === 'neg') collect(node[1], kind, found);
    else if (node[0] === 'fn') node[2].forEach((a) => collect(a, kind, found));
    return found;
  }

  const api = {
    evaluate, toBoolean, toNumber, toString, XDate,
    references: (ast) => Array.from(collect(ast, 'ref', new Set())),
    columns: (ast) => Array.from(collect(ast, 'col', new Set())),
    isDate: (v) => v instanceof XDate,
  };
  if (typeof module === 'object' && module.exports) module.exports = api;
  if (root) root.TanysExpr = api;
})(typeof window !== 'undefined' ? window : null);
