/**
 * Settings kept in localStorage. Storage can be unavailable (private mode,
 * a blocked origin): the page then just forgets between visits.
 */
const PREFIX = "graphserve.";

export function load(key: string): string | null {
  try {
    return localStorage.getItem(PREFIX + key);
  } catch {
    return null;
  }
}

export function save(key: string, value: string): void {
  try {
    if (value === "") localStorage.removeItem(PREFIX + key);
    else localStorage.setItem(PREFIX + key, value);
  } catch {
    // Not persisted; the value still applies to this page.
  }
}
