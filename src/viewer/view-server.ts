// `nixstate view`'s server: the viewer page of one run on 127.0.0.1, and, while the run goes on,
// its data again over Server-Sent Events whenever the run log has grown (the log is polled every
// POLL_MS, or less often when rebuilding the data takes long: a page never falls behind by more
// than a few rebuilds). Reads the log only; the build never knows it is watched.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { RunLog } from "../events/run-log.ts";
import type { ViewData } from "./page/view-data.ts";
import { pageHtml } from "./page-html.ts";
import { viewModel } from "./view-model.ts";

export const POLL_MS = 200;

export class ViewServerError extends Error {
  override name = "ViewServerError";
}

export interface ViewServerOptions {
  log: RunLog;
  run: number;
  /** 0: any free port. */
  port: number;
  logTail?: (drvPath: string) => string[] | undefined;
}

export class ViewServer {
  private readonly clients = new Set<ServerResponse>();
  private data: ViewData;
  private json: string;
  private seen: { events: number; state: string };
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(
    private readonly o: ViewServerOptions,
    private readonly server: Server,
  ) {
    this.data = this.build();
    this.json = JSON.stringify(this.data);
    this.seen = { events: this.o.log.extent(this.o.run).events, state: this.data.run.state };
  }

  static async start(o: ViewServerOptions): Promise<ViewServer> {
    const server = createServer();
    const v = new ViewServer(o, server);
    server.on("request", (req, res) => {
      v.handle(req, res).catch((e: Error) => {
        if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
        res.end(`nixstate view: ${e.message}\n`);
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", (e: NodeJS.ErrnoException) =>
        reject(
          new ViewServerError(
            e.code === "EADDRINUSE"
              ? `port ${o.port} on 127.0.0.1 is in use; choose another with --port, or leave it out for any free port`
              : `cannot serve the viewer on 127.0.0.1:${o.port}: ${e.message}`,
          ),
        ),
      );
      server.listen(o.port, "127.0.0.1", () => resolve());
    });
    v.schedule(POLL_MS);
    return v;
  }

  get url(): string {
    const a = this.server.address();
    const port = typeof a === "object" && a ? a.port : this.o.port;
    return `http://127.0.0.1:${port}/`;
  }

  private build(): ViewData {
    const { log, run } = this.o;
    const row = log.run(run);
    return viewModel(row, log.events(run), {
      live: row.state === "running",
      ...(this.o.logTail ? { logTail: this.o.logTail } : {}),
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? "/", "http://127.0.0.1").pathname;
    if (path === "/" || path === "/index.html") {
      const html = await pageHtml(this.data);
      res.writeHead(200, {
        "content-type": "text/html; charset=utf-8",
        "cache-control": "no-store",
      });
      res.end(html);
    } else if (path === "/events") {
      res.writeHead(200, {
        "content-type": "text/event-stream",
        "cache-control": "no-store",
        connection: "keep-alive",
      });
      // What changed between the page's load and this connection.
      res.write(`data: ${this.json}\n\n`);
      this.clients.add(res);
      req.on("close", () => this.clients.delete(res));
    } else if (path === "/data.json") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(this.json);
    } else {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("not found\n");
    }
  }

  private schedule(ms: number): void {
    if (this.closed) return;
    this.timer = setTimeout(() => this.poll(), ms);
  }

  /** Rebuild and push when the run has logged more (or changed state). */
  private poll(): void {
    let next = POLL_MS;
    try {
      const events = this.o.log.extent(this.o.run).events;
      const state = this.o.log.run(this.o.run).state;
      if (events !== this.seen.events || state !== this.seen.state) {
        const t0 = performance.now();
        this.data = this.build();
        this.json = JSON.stringify(this.data);
        this.seen = { events, state };
        for (const c of this.clients) c.write(`data: ${this.json}\n\n`);
        next = Math.max(POLL_MS, 3 * (performance.now() - t0));
      }
    } catch {
      // The log is busy or being pruned: try again at the next tick.
    }
    if (this.seen.state === "running") this.schedule(next);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    for (const c of this.clients) c.end();
    this.clients.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
