// Headless Chromium for the viewer's tests (Debian's /usr/bin/chromium, driven by playwright-core),
// with every request that is not to `allowed` blocked and recorded.
import { existsSync } from "node:fs";
import { type Browser, chromium, type Page } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";

/** Whether the browser tests can run; under CI a missing browser is an error, not a skip. */
export function haveChromium(): boolean {
  if (existsSync(CHROMIUM)) return true;
  if (process.env.CI === "true")
    throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)`);
  return false;
}

export async function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    // Tests run as root: Chromium's sandbox needs an unprivileged user.
    args: ["--no-sandbox", "--disable-gpu"],
  });
}

/** A page that may load only URLs starting with `allowed`; the rest are aborted and listed. */
export async function lockedPage(
  browser: Browser,
  allowed: string,
): Promise<{ page: Page; blocked: string[]; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1440, height: 860 } });
  const blocked: string[] = [];
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  // Only what is not allowed is intercepted: an intercepted response is delivered whole, which
  // would hold back the live page's event stream for ever.
  await page.route(
    (url) => !url.href.startsWith(allowed),
    (route) => {
      blocked.push(route.request().url());
      return route.abort();
    },
  );
  return { page, blocked, errors };
}
