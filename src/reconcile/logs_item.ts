/**
 * A Logs API item as the event-data a webhook carries. The Logs API gives
 * the time as `@timestamp`, ISO 8601 to the millisecond
 * (`2024-07-08T16:30:18.530Z`), where webhooks and the Events API give
 * `timestamp`, Unix seconds with microseconds: the item gets `timestamp`
 * (seconds, millisecond precision) and keeps everything else as it came. The
 * trail's key (row, event id, UTC day) makes the two precisions one event.
 * An item whose `@timestamp` is not a time is left without `timestamp`, and
 * is then refused as unusable like a webhook without one.
 */
export function logsItemToEventData(item: Record<string, unknown>): Record<string, unknown> {
  if (typeof item.timestamp === "number") return item;
  const stamp = item["@timestamp"];
  const ms = typeof stamp === "string" ? Date.parse(stamp) : NaN;
  if (Number.isNaN(ms)) return item;
  return { ...item, timestamp: ms / 1000 };
}
