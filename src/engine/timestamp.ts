/**
 * Packet timestamps. MediaPipe uses int64 microseconds; we use JS numbers so
 * the hot path never touches bigint. Range values run over the safe-integer
 * range, and the special values sit just outside it in the same order as
 * MediaPipe's, so comparisons mean the same thing.
 */
export type Timestamp = number;

const TOP = Number.MAX_SAFE_INTEGER; // 2^53 - 1

export const Timestamp = {
  Unset: -TOP,
  Unstarted: -TOP + 1,
  PreStream: -TOP + 2,
  Min: -TOP + 3,
  Max: TOP - 3,
  PostStream: TOP - 2,
  OneOverPostStream: TOP - 1,
  Done: TOP,

  /** The smallest timestamp a stream may carry after a packet at `ts`. */
  nextAllowedInStream(ts: Timestamp): Timestamp {
    if (ts >= Timestamp.Max || ts === Timestamp.PreStream) return Timestamp.OneOverPostStream;
    return ts + 1;
  },

  isRangeValue(ts: Timestamp): boolean {
    return Number.isInteger(ts) && ts >= Timestamp.Min && ts <= Timestamp.Max;
  },

  isAllowedInStream(ts: Timestamp): boolean {
    return Number.isInteger(ts) && ts >= Timestamp.PreStream && ts <= Timestamp.PostStream;
  },

  /** MediaPipe's debug names for the special values, the number otherwise. */
  format(ts: Timestamp): string {
    switch (ts) {
      case Timestamp.Unset: return "Timestamp::Unset()";
      case Timestamp.Unstarted: return "Timestamp::Unstarted()";
      case Timestamp.PreStream: return "Timestamp::PreStream()";
      case Timestamp.Min: return "Timestamp::Min()";
      case Timestamp.Max: return "Timestamp::Max()";
      case Timestamp.PostStream: return "Timestamp::PostStream()";
      case Timestamp.OneOverPostStream: return "Timestamp::OneOverPostStream()";
      case Timestamp.Done: return "Timestamp::Done()";
      default: return String(ts);
    }
  },
} as const;
