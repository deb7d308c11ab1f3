import { parse as parseArray } from 'postgres-array';
import type { ValueParser } from '../replication/replication-stream.js';

/**
 * The converter for a column of type `typeOid`, following docs/protocol.md:
 * `int2/int4/float` → number; `int8` → number when safe, else string;
 * `numeric` → string; `bool` → boolean; `json/jsonb` → parsed JSON;
 * `timestamptz/timestamp/date` → ISO-8601 string; arrays → arrays;
 * `bytea` → base64; anything else → its text form.
 *
 * It relies on the walsender session settings of the replication stream
 * (`DateStyle=ISO`, `TimeZone=UTC`, `bytea_output=hex`). Non-finite floats
 * (`NaN`, `Infinity`) stay strings, since JSON has no number for them, and
 * so do `infinity` timestamps.
 *
 * @example
 * valueParser(20)('9007199254740993') // '9007199254740993'
 */
export function valueParser(typeOid: number): ValueParser {
  const scalar = SCALARS.get(typeOid);
  if (scalar) return scalar;
  const element = ARRAYS.get(typeOid);
  if (element) return (text) => parseArray(text, element);
  return asText;
}

const asText: ValueParser = (text) => text;

const toBool: ValueParser = (text) => text === 't';

const toInt: ValueParser = (text) => Number(text);

const toInt8: ValueParser = (text) => {
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : text;
};

const toFloat: ValueParser = (text) => {
  const n = Number(text);
  return Number.isFinite(n) ? n : text;
};

const toJson: ValueParser = (text) => JSON.parse(text);

/** `2026-11-22 10:00:00.123456+00` → `2026-11-22T10:00:00.123456Z` (microseconds kept). */
const toTimestamptz: ValueParser = (text) => {
  if (text.endsWith('+00')) return `${text.slice(0, 10)}T${text.slice(11, -3)}Z`;
  return text.length > 10 && text[10] === ' ' ? `${text.slice(0, 10)}T${text.slice(11)}` : text;
};

/** `2026-11-22 10:00:00.123` → `2026-11-22T10:00:00.123` (no zone: it has none). */
const toTimestamp: ValueParser = (text) =>
  text.length > 10 && text[10] === ' ' ? `${text.slice(0, 10)}T${text.slice(11)}` : text;

/** `\x68656c6c6f` → `aGVsbG8=`. */
const toBytea: ValueParser = (text) => Buffer.from(text.slice(2), 'hex').toString('base64');

/** Scalar type OIDs (pg_type.dat). */
const SCALARS = new Map<number, ValueParser>([
  [16, toBool],
  [17, toBytea],
  [20, toInt8],
  [21, toInt],
  [23, toInt],
  [26, toInt],
  [700, toFloat],
  [701, toFloat],
  [114, toJson],
  [3802, toJson],
  [1114, toTimestamp],
  [1184, toTimestamptz],
  [1082, asText],
  [1700, asText],
]);

/** Array type OID → converter of its elements. */
const ARRAYS = new Map<number, ValueParser>([
  [1000, toBool],
  [1001, toBytea],
  [1016, toInt8],
  [1005, toInt],
  [1007, toInt],
  [1028, toInt],
  [1021, toFloat],
  [1022, toFloat],
  [199, toJson],
  [3807, toJson],
  [1115, toTimestamp],
  [1185, toTimestamptz],
  [1182, asText],
  [1231, asText],
  [1009, asText], // text[]
  [1015, asText], // varchar[]
  [1014, asText], // bpchar[]
  [2951, asText], // uuid[]
  [1183, asText], // time[]
  [1270, asText], // timetz[]
  [1187, asText], // interval[]
  [1041, asText], // inet[]
  [651, asText], // cidr[]
  [1040, asText], // macaddr[]
  [1002, asText], // char[]
  [1003, asText], // name[]
  [1263, asText], // cstring[]
]);
