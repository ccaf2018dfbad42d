// The teacher's status page: every 2 seconds, fetch /status.json (the
// token travels in the HttpOnly cookie the server set when the page was
// opened with ?token=…) and show it. Every value is inserted as text
// (textContent), never as HTML: a user or room name cannot become markup.

const REFRESH_MS = 2000;

/** Replaces the children of `parent` with `nodes`. */
function fill(parent, nodes) {
  parent.replaceChildren(...nodes);
}

/** One <dt>/<dd> pair per [label, value]. */
function pairs(list) {
  const nodes = [];
  for (const [label, value] of list) {
    const dt = document.createElement("dt");
    dt.textContent = label;
    const dd = document.createElement("dd");
    dd.textContent = String(value);
    nodes.push(dt, dd);
  }
  return nodes;
}

/** One table row holding `cells` as text. */
function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    const td = document.createElement("td");
    td.textContent = String(cell);
    tr.append(td);
  }
  return tr;
}

/** "1 h 2 min 3 s" from seconds. */
function duration(seconds) {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return (h ? `${h} h ` : "") + (h || m ? `${m} min ` : "") + `${s} s`;
}

/**
 * A limit as the option that sets it: `idle_timeout_secs`, 1800 becomes
 * `--idle-timeout`, `1800 s`.
 */
function limit(key, value) {
  const seconds = key.endsWith("_secs");
  const option = "--" + key.replace(/_secs$/, "").replaceAll("_", "-");
  return [option, seconds ? `${value} s` : value];
}

/**
 * A bus or a store as "redis: working" or "postgres: NOT WORKING (why)".
 */
function health(kind, part) {
  return part.ok ? `${kind}: working` : `${kind}: NOT WORKING (${part.last_error ?? "unknown"})`;
}

function show(data) {
  const cert = data.certificate;
  fill(document.getElementById("server"), pairs([
    ["Version", data.version],
    ["Up for", duration(data.uptime_secs)],
    ["Certificate", cert ? `${cert.subject}, valid until ${cert.not_after}` : "(not loaded from files)"],
    ["Slow consumers dropped", data.slow_consumers_dropped],
    ["Rate-limited commands", data.rate_limited_commands],
    ["Node", data.node.id],
    ["Bus", health(data.node.bus.kind, data.node.bus)],
    ["Store", health(data.node.store.engine, data.node.store)],
  ]));
  fill(document.getElementById("connections"), pairs([
    ["Terminal", data.connections.terminal],
    ["Web (chat)", data.connections.web],
    ["Web (pages)", data.connections.http],
    ["Handshaking", data.connections.handshaking],
  ]));
  fill(document.getElementById("users"),
    data.users.map((u) => row([u.name, u.room ?? "—"])));
  fill(document.getElementById("rooms"),
    data.rooms.map((r) => row([r.name, r.private ? "yes" : "no", r.members, r.messages_last_minute])));
  fill(document.getElementById("limits"),
    pairs(Object.entries(data.limits).map(([key, value]) => limit(key, value))));
  const connect = document.getElementById("connect");
  if (data.public_address) {
    document.getElementById("public-address").textContent = data.public_address;
    document.getElementById("public-url").textContent = `https://${data.public_address}/`;
    connect.hidden = false;
  } else {
    connect.hidden = true;
  }
  document.getElementById("updated").textContent =
    `Updated ${new Date().toLocaleTimeString()}`;
}

async function refresh() {
  try {
    const response = await fetch("/status.json", { cache: "no-store" });
    if (!response.ok) {
      document.getElementById("updated").textContent =
        response.status === 401
          ? "Not allowed: open the address the server printed (with ?token=…)."
          : `The server answered ${response.status}.`;
      return;
    }
    show(await response.json());
  } catch (e) {
    document.getElementById("updated").textContent = "The server cannot be reached; retrying.";
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
