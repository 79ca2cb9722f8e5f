/**
 * An event as webhooks carry it (Standard Webhooks payload structure): `type`, `timestamp` (the
 * event's time, ISO-8601) and `data`, the event as GET /api/v1/events shows it.
 */
export function eventPayload(row: Record<string, unknown>): { type: string; timestamp: string; data: Record<string, unknown> } {
  const at = new Date(String(row.at)).toISOString();
  return {
    type: String(row.type),
    timestamp: at,
    data: {
      id: row.id,
      organization_id: row.organization_id ?? null,
      type: row.type,
      reason: row.reason ?? null,
      connection_id: row.connection_id ?? null,
      user_id: row.user_id ?? null,
      ip: row.ip ?? null,
      at,
      detail: row.detail ?? {},
    },
  };
}
