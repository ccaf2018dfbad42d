// The web client: protocol v1 over a WebSocket, in plain JavaScript.
//
// The server carries the same line protocol as the terminal client's, one
// WebSocket text message per line (no LF), in both directions. This file
// has four parts, in this order:
//
//   1. the connection: open the socket, send lines, notice a lost
//      connection and open a new one with growing delays (backoff);
//   2. the protocol: every line the server sends, handled by its first word;
//   3. the page: the functions that draw rooms, members and messages;
//   4. the user's actions: the forms and buttons.
//
// Two rules hold everywhere:
//   - Text that came from the network (names, messages) is put on the page
//     with textContent or createTextNode, never as HTML. A message
//     `<img src=x onerror=alert(1)>` shows those characters; it cannot add
//     an element or run a script.
//   - The password lives only in this page's memory (the `session` object),
//     so that the page can log in again after a lost connection. It is
//     never written to localStorage, sessionStorage or a cookie.

import { catalogs, pickLanguage, t } from "./i18n.js";

// ---------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------

/** The largest line the server takes, LF included (the protocol's default). */
const MAX_LINE_BYTES = 4096;
/** Delays before reconnecting, in seconds: doubled after each failure. */
const BACKOFF_FIRST = 1;
const BACKOFF_MAX = 30;
/** A PING after this long without a line from the server... */
const QUIET_MS = 30_000;
/** ...and the connection counts as lost if the PONG takes longer than this. */
const PONG_WAIT_MS = 30_000;
/** A PING after this long without sending, so a reader is not idle-timed-out. */
const KEEPALIVE_MS = 5 * 60_000;
/** The room list is asked for again this often while it is on screen. */
const ROOMS_REFRESH_MS = 30_000;
/** The message list keeps at most this many entries. */
const MAX_LOG_ENTRIES = 500;

const state = {
  lang: pickLanguage(navigator.languages ?? [navigator.language ?? "en"]),

  socket: null, // the WebSocket, or null
  ready: false, // HELLO received: lines can be sent
  queue: [], // lines waiting for HELLO, sent in order once it comes
  // Every line sent waits for exactly one final reply (OK, ERR, BYE, PONG),
  // and replies come in the order the lines were sent. So the oldest entry
  // of `pending` is the command the next final reply answers. A successful
  // SAY has no OK: its own MSG coming back is its reply.
  pending: [],
  bye: null, // the BYE line's reason, if the server sent one
  byeText: "", // and its text
  lastReceived: 0, // Date.now() of the last line from the server
  lastSent: 0, // Date.now() of the last line sent
  pingSentAt: 0, // when the keepalive PING went out, or 0

  // The session the page keeps across a lost connection, in memory only.
  session: null, // { user, password } after a successful LOGIN, else null
  loggedIn: false,
  room: null, // the room we are in, as the server spells it
  roomPassword: null, // its password if it is private, to join it again
  retries: 0, // connection attempts in a row that failed
  retryTimer: null,
  reconnecting: false, // the next OK LOGIN is an automatic one

  // Data lines collected until the final reply they belong to.
  roomLines: [],
  userLines: [],
  historyLines: [],
  infoLines: [], // INFO lines of a quiet HELP (below)
  banLines: [], // BANNED lines of a BANS
  joinTopic: null, // the TOPIC line that came with a JOIN, until its OK

  rooms: [], // [{ name, private, online }] from the last ROOMS
  members: [], // the user names in our room, from WHO, then JOINED/LEFT
  shown: new Set(), // "time user text" of the room's messages on screen

  // Moderation. No command tells a session its role, but HELP lists the
  // moderation commands only to whom may use them (KICK, BAN, UNBAN, BANS,
  // TOPIC <topic>, CLOSE to an admin or the owner of the current room;
  // ANNOUNCE, SUSPEND to an admin). So the page sends HELP quietly after
  // each LOGIN and JOIN, and shows the controls whose keyword came back.
  can: noRights(),
  topic: null, // { by, time, topic } of our room, or null
  bans: null, // [{ user, until, by }] from the last BANS; null until it comes
  menuFor: null, // the member whose action menu is open, or null
  announcement: null, // { time, from, text } of the last NOTICE not dismissed
};

/** What HELP has not (yet) shown this session may do: nothing. */
function noRights() {
  return {
    kick: false,
    ban: false,
    unban: false,
    bans: false,
    topic: false,
    close: false,
    announce: false,
  };
}

// The page's elements, by id.
const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------
// 1. The connection
// ---------------------------------------------------------------------------

/** Opens a WebSocket to this page's own server, unless one is open. */
function connect() {
  if (state.socket) return;
  clearTimeout(state.retryTimer);
  state.retryTimer = null;
  setStatus("connecting");
  const socket = new WebSocket(`wss://${location.host}/ws`);
  state.socket = socket;
  state.ready = false;
  state.pending = [];
  state.bye = null;
  state.byeText = "";
  state.pingSentAt = 0;
  socket.addEventListener("message", (event) => {
    state.lastReceived = Date.now();
    handleLine(String(event.data));
  });
  socket.addEventListener("close", (event) => {
    if (state.socket !== socket) return;
    // The server's close frame carries the BYE reason too: it counts when
    // the BYE line itself could not be delivered (a slow consumer).
    if (!state.bye && /^[A-Z_]+$/.test(event.reason)) state.bye = event.reason;
    connectionEnded();
  });
  // An "error" event is always followed by "close": handled there.
}

/**
 * Sends one protocol line (no LF: the WebSocket message is the line).
 * `entry` describes the command for the reply handlers; it is queued in
 * `pending`. Before HELLO the line waits in `queue`; with no connection,
 * one is opened.
 */
function send(line, entry) {
  if (new TextEncoder().encode(line).length + 1 > MAX_LINE_BYTES) {
    showError(t(state.lang, "tooLong"));
    return false;
  }
  if (!state.socket) connect();
  if (state.ready) {
    transmit(line, entry);
  } else {
    state.queue.push([line, entry]);
  }
  return true;
}

function transmit(line, entry) {
  state.pending.push(entry);
  state.lastSent = Date.now();
  state.socket.send(line);
}

/** HELLO arrived: the lines waiting for it go out, in order. */
function connectionReady() {
  state.ready = true;
  const waiting = state.queue;
  state.queue = [];
  if (state.session && !waiting.some(([, entry]) => entry.command === "LOGIN")) {
    // A lost connection, now back: log in again as before.
    state.reconnecting = true;
    const { user, password } = state.session;
    transmit(`LOGIN ${user} ${password}`, { command: "LOGIN", user, password });
  }
  for (const [line, entry] of waiting) transmit(line, entry);
  setStatus();
}

/**
 * The socket closed. After a BYE that asks for it (QUIT, logged in
 * elsewhere, idle) the page goes back to the login form. Otherwise, if we
 * were logged in, it tries again after a delay that doubles each time
 * (1, 2, 4 ... 30 s), with some randomness so that a whole class does not
 * come back in the same instant after the server restarts.
 */
function connectionEnded() {
  const hadHello = state.ready;
  const waiting = state.queue.length > 0;
  state.socket = null;
  state.ready = false;
  state.pending = [];
  state.queue = [];
  state.loggedIn = false;
  state.pingSentAt = 0;
  state.can = noRights();
  state.menuFor = null;
  closeDialogs();
  drawRights();

  const reason = state.bye;
  // A suspension ends the session too: logging in again would only be
  // refused (ERR SUSPENDED) until it ends, so the page does not try.
  const endsSession =
    reason === "QUIT" ||
    reason === "LOGGED_IN_ELSEWHERE" ||
    reason === "IDLE" ||
    reason === "SUSPENDED";
  if (endsSession || !state.session) {
    forgetSession();
    showView();
    setBusy(false);
    if (!hadHello && waiting) showError(t(state.lang, "cannotConnect"));
    else if (reason && reason !== "QUIT") showError(byeText(reason));
    setStatus();
    return;
  }
  if (reason) addNotice(byeText(reason), "error");
  state.retries += 1;
  const base = Math.min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (state.retries - 1));
  const seconds = Math.max(1, Math.round(base * (0.75 + Math.random() * 0.5)));
  setStatus("lost", { seconds });
  setComposerEnabled(false);
  state.retryTimer = setTimeout(connect, seconds * 1000);
}

/** Closes the socket now and treats the connection as lost. */
function dropConnection() {
  const socket = state.socket;
  if (!socket) return;
  state.socket = null; // its own "close" event, whenever it comes, is ignored
  socket.close();
  connectionEnded();
}

function forgetSession() {
  state.session = null;
  state.loggedIn = false;
  state.room = null;
  state.roomPassword = null;
  state.reconnecting = false;
  state.members = [];
  state.topic = null;
  state.can = noRights();
  state.menuFor = null;
  state.announcement = null;
  drawAnnouncement();
  state.shown.clear();
  clearTimeout(state.retryTimer);
  state.retryTimer = null;
  state.retries = 0;
}

/**
 * Every 5 s: a PING after 30 s of silence from the server (and after 5 min
 * without sending, so that a user who only reads is not dropped as idle);
 * no answer within 30 s more means the connection is gone, even if the
 * browser has not noticed yet (a phone that changed networks).
 */
setInterval(() => {
  if (!state.ready || !state.loggedIn) return;
  const now = Date.now();
  if (state.pingSentAt) {
    if (now - state.pingSentAt > PONG_WAIT_MS) dropConnection();
  } else if (now - state.lastReceived > QUIET_MS || now - state.lastSent > KEEPALIVE_MS) {
    state.pingSentAt = now;
    transmit("PING keepalive", { command: "PING" });
  }
}, 5000);

// ---------------------------------------------------------------------------
// 2. The protocol: one function per kind of line the server sends
// ---------------------------------------------------------------------------

/**
 * Splits `line` into `count` fields at single spaces; the last field is the
 * rest of the line, spaces included (a message text, a reason).
 */
function fields(line, count) {
  const parts = [];
  let rest = line;
  while (parts.length < count - 1) {
    const space = rest.indexOf(" ");
    if (space < 0) break;
    parts.push(rest.slice(0, space));
    rest = rest.slice(space + 1);
  }
  parts.push(rest);
  return parts;
}

function handleLine(line) {
  const keyword = fields(line, 2)[0];
  switch (keyword) {
    case "HELLO": {
      const [, version] = fields(line, 3);
      if (version !== "1") addNotice(t(state.lang, "otherVersion", { version }), "error");
      connectionReady();
      break;
    }
    case "OK":
      onOk(line);
      break;
    case "ERR": {
      const [, code, text] = fields(line, 3);
      onErr(state.pending.shift(), code, text ?? "");
      break;
    }
    case "BYE": {
      const [, reason, text] = fields(line, 3);
      state.bye = reason;
      state.byeText = text ?? "";
      if (!byeText(reason, false)) addNotice(t(state.lang, "unknownBye", { text: text ?? reason }), "error");
      break; // the socket closes next: see connectionEnded
    }
    case "PONG":
      takeReply("PING");
      state.pingSentAt = 0;
      break;
    case "ROOM": {
      const [, name, kind, online] = fields(line, 4);
      state.roomLines.push({ name, private: kind === "private", online: Number(online) });
      break;
    }
    case "USER":
      state.userLines.push(fields(line, 2)[1]);
      break;
    case "HISTORY": {
      const [, room, time, user, text] = fields(line, 5);
      state.historyLines.push({ room, time, user, text });
      break;
    }
    case "INFO":
      if (awaiting("HELP")?.quiet) state.infoLines.push(fields(line, 2)[1] ?? "");
      else addNotice(fields(line, 2)[1] ?? "");
      break;
    case "MSG": {
      const [, room, time, user, text] = fields(line, 5);
      if (sameName(user, state.session?.user) && state.pending[0]?.command === "SAY") {
        state.pending.shift(); // our own SAY, confirmed
      }
      if (sameName(room, state.room)) addMessage({ time, user, text });
      break;
    }
    case "JOINED": {
      const [, room, user] = fields(line, 3);
      if (!sameName(room, state.room)) break;
      if (!state.members.some((m) => sameName(m, user))) state.members.push(user);
      drawMembers();
      addNotice(t(state.lang, "userJoined", { user }));
      break;
    }
    case "LEFT": {
      const [, room, user, how] = fields(line, 4);
      if (!sameName(room, state.room)) break;
      state.members = state.members.filter((m) => !sameName(m, user));
      if (sameName(state.menuFor, user)) state.menuFor = null;
      drawMembers();
      // A reason this page does not know reads as `leave`.
      const key = how === "quit" ? "userDisconnected" : how === "kick" ? "userKicked" : "userLeft";
      addNotice(t(state.lang, key, { user }));
      break;
    }
    case "DM": {
      const [, from, time, text] = fields(line, 4);
      addMessage({ time, user: t(state.lang, "dmFrom", { user: from }), text, kind: "dm" });
      break;
    }
    case "TOPIC": {
      const [, room, by, time, topic] = fields(line, 5);
      onTopic(room, { by, time, topic: topic ?? "" });
      break;
    }
    case "KICKED": {
      const [, room, by, reason] = fields(line, 4);
      const key = reason ? "youWereKickedReason" : "youWereKicked";
      putOutOfRoom(room, t(state.lang, key, { room, by, reason }));
      break;
    }
    case "CLOSED": {
      const [, room, by] = fields(line, 3);
      // Who closed it hears OK CLOSE (below) instead.
      const mine = sameName(by, state.session?.user);
      const text = mine ? null : t(state.lang, "roomClosedBy", { room, by });
      putOutOfRoom(room, text);
      break;
    }
    case "NOTICE": {
      const [, time, from, text] = fields(line, 4);
      state.announcement = { time, from, text: text ?? "" };
      drawAnnouncement();
      const user = t(state.lang, "announcementLog", { user: from });
      addMessage({ time, user, text, kind: "announcement" });
      break;
    }
    case "BANNED": {
      const [, room, user, until, by] = fields(line, 5);
      state.banLines.push({ room, user, until, by });
      break;
    }
    default:
      // The compatibility rule: a line whose first word this page does not
      // know (a later version's event) is ignored.
      break;
  }
}

/**
 * The oldest command still waiting for its final reply, SAYs aside (a
 * successful SAY has none): the data lines that come now belong to it.
 * That command if it is `command`, else undefined.
 */
function awaiting(command) {
  const head = state.pending.find((entry) => entry.command !== "SAY");
  return head?.command === command ? head : undefined;
}

/**
 * A `TOPIC` line: a data line of the JOIN on its way (kept until its OK),
 * or our room's topic, changed just now by its owner or an admin.
 */
function onTopic(room, topic) {
  const join = awaiting("JOIN");
  if (join && sameName(join.room, room)) {
    state.joinTopic = { room, ...topic };
    return;
  }
  if (!sameName(room, state.room)) return;
  state.topic = topic;
  drawTopic();
  addNotice(t(state.lang, "topicChanged", { user: topic.by, topic: topic.topic }));
}

/** `KICKED` or `CLOSED`: we are in no room now; `text` says why. */
function putOutOfRoom(room, text) {
  if (sameName(room, state.room)) {
    state.room = null;
    state.roomPassword = null; // not to be joined again after a lost connection
    state.members = [];
    state.topic = null;
    state.menuFor = null;
    state.shown.clear();
    closeDialogs();
    drawRoom();
    $("rooms-panel").open = true;
  }
  if (text) addNotice(text, "error");
  if (state.loggedIn) send("ROOMS", { command: "ROOMS" });
}

/**
 * The oldest pending command, which a final reply `OK <command>` or `PONG`
 * answers. SAYs before it succeeded (a failed SAY gets its ERR first), and
 * their MSG may still be on its way: they are dropped from the queue.
 */
function takeReply(command) {
  while (state.pending.length > 0 && state.pending[0].command === "SAY" && command !== "SAY") {
    state.pending.shift();
  }
  return state.pending.shift() ?? { command };
}

function onOk(line) {
  const [, command, arg, extra] = fields(line, 4);
  const entry = takeReply(command);
  switch (command) {
    case "REGISTER":
      showLoginMessage(t(state.lang, "registered", { user: arg }));
      setBusy(false);
      break;
    case "LOGIN": {
      state.loggedIn = true;
      state.retries = 0;
      state.session = { user: arg, password: entry.password };
      $("login-password").value = "";
      showView();
      setStatus();
      send("ROOMS", { command: "ROOMS" });
      askRights();
      if (state.reconnecting && state.room) {
        const password = state.roomPassword;
        send(password ? `JOIN ${state.room} ${password}` : `JOIN ${state.room}`, {
          command: "JOIN",
          room: state.room,
          password,
          rejoin: true,
        });
      } else if (state.reconnecting) {
        addNotice(t(state.lang, "reconnected"));
      }
      state.reconnecting = false;
      setBusy(false);
      break;
    }
    case "ROOMS":
      state.rooms = state.roomLines;
      state.roomLines = [];
      drawRooms();
      break;
    case "CREATE":
      addNotice(t(state.lang, entry.private ? "createdPrivate" : "createdPublic", { room: arg }));
      $("create-name").value = "";
      $("create-password").value = "";
      send("ROOMS", { command: "ROOMS" });
      break;
    case "JOIN":
      joined(arg, entry);
      break;
    case "LEAVE":
      addNotice(t(state.lang, "leftRoom", { room: arg }));
      state.room = null;
      state.roomPassword = null;
      state.members = [];
      state.shown.clear();
      drawRoom();
      send("ROOMS", { command: "ROOMS" });
      break;
    case "WHO":
      state.members = state.userLines;
      state.userLines = [];
      drawMembers();
      break;
    case "DM":
      addMessage({
        time: new Date().toISOString(),
        user: t(state.lang, "dmToLabel", { user: arg }),
        text: entry.text ?? "",
        kind: "dm",
      });
      addNotice(t(state.lang, extra === "stored" ? "dmStored" : "dmDelivered", { user: arg }));
      break;
    case "HELP":
      // Asked by askRights: its INFO lines say what we may do. (Asked by
      // anyone else, they were shown as they came.)
      if (entry.quiet) {
        state.can = rightsFrom(state.infoLines);
        state.infoLines = [];
        drawRights();
      }
      break;
    case "KICK":
      addNotice(t(state.lang, "kickDone", { user: arg }));
      break;
    case "BAN":
      addNotice(
        entry.minutes
          ? t(state.lang, "banDoneMinutes", { user: arg, room: entry.room, minutes: entry.minutes })
          : t(state.lang, "banDoneForever", { user: arg, room: entry.room }),
      );
      if ($("bans-dialog").open) askBans();
      break;
    case "UNBAN": {
      const text = t(state.lang, "unbanDone", { user: arg, room: entry.room });
      addNotice(text);
      $("bans-status").textContent = text;
      if ($("bans-dialog").open) askBans();
      break;
    }
    case "BANS":
      state.bans = state.banLines;
      state.banLines = [];
      drawBans();
      break;
    case "TOPIC":
      break; // the TOPIC line, to every member, came just before
    case "CLOSE":
      addNotice(t(state.lang, "roomClosed", { room: arg }));
      break;
    case "ANNOUNCE":
      addNotice(t(state.lang, "announceDone", { count: arg }));
      $("announce-text").value = "";
      break;
    default:
      addNotice(t(state.lang, "unknownLine", { line }), "error");
  }
}

/** `OK JOIN <room>`: the history that came before it, then the live room. */
function joined(room, entry) {
  const history = state.historyLines;
  state.historyLines = [];
  const rejoin = sameName(room, state.room);
  if (!rejoin) state.shown.clear();
  state.room = room;
  state.roomPassword = entry.password ?? null;
  state.topic = sameName(state.joinTopic?.room, room) ? state.joinTopic : null;
  state.joinTopic = null;
  state.menuFor = null;
  // What we may do in this room: an admin may do it everywhere, an owner in
  // its own rooms only. HELP, asked below, tells.
  if (!state.can.announce) state.can = noRights();
  drawRoom();
  const fresh = history.filter((m) => !state.shown.has(messageKey(m)));
  if (fresh.length > 0) {
    addNotice(
      fresh.length === 1
        ? t(state.lang, "historyStart1")
        : t(state.lang, "historyStart", { count: fresh.length }),
    );
    for (const m of fresh) addMessage({ ...m, kind: "history" });
    addNotice(t(state.lang, "historyEnd"));
  }
  addNotice(t(state.lang, entry.rejoin ? "reconnected" : "enteredRoom", { room }));
  send("WHO", { command: "WHO" });
  send("ROOMS", { command: "ROOMS" });
  askRights();
  if (!rejoin && window.matchMedia("(max-width: 48rem)").matches) {
    $("rooms-panel").open = false; // on a phone, make room for the chat
  }
  $("message").focus();
}

function onErr(entry = { command: "" }, code, text) {
  // `{text}` in a sentence is the server's own text: it names the end of a
  // ban or a suspension, and the role NOT_ALLOWED needs.
  const sentence =
    t(state.lang, `errors.${code}`, { text }) ?? t(state.lang, "unknownError", { text });
  switch (entry.command) {
    case "LOGIN":
      if (state.reconnecting) {
        // Logging in again after a lost connection failed: start over.
        state.reconnecting = false;
        const room = state.room;
        forgetSession();
        showView();
        if (room) addNotice(sentence, "error");
      }
      showError(sentence);
      setBusy(false);
      break;
    case "REGISTER":
      showError(sentence);
      setBusy(false);
      break;
    case "SAY":
      addNotice(sentence, "error");
      // Not said: the text goes back into the field, to be sent again.
      if ($("message").value === "") $("message").value = entry.text;
      break;
    case "HELP":
      state.infoLines = [];
      break;
    case "KICK":
      // NO_SUCH_USER: not a member of the room (any more).
      addNotice(
        code === "NO_SUCH_USER" ? t(state.lang, "notInThisRoom", { user: entry.user }) : sentence,
        "error",
      );
      break;
    case "BANS":
      state.banLines = [];
      $("bans-status").textContent = sentence;
      addNotice(sentence, "error");
      break;
    case "UNBAN":
      $("bans-status").textContent = sentence;
      addNotice(sentence, "error");
      break;
    case "JOIN":
      state.joinTopic = null;
      if (code === "BAD_ROOM_PASSWORD") {
        askRoomPassword(entry.room, sentence);
      } else {
        if (entry.rejoin) {
          state.room = null;
          state.roomPassword = null;
          drawRoom();
        }
        addNotice(sentence, "error");
      }
      break;
    default:
      addNotice(sentence, "error");
  }
}

/** The sentence for `BYE <reason>`, or (with `fallback` false) undefined. */
function byeText(reason, fallback = true) {
  return (
    t(state.lang, `byes.${reason}`, { text: state.byeText }) ??
    (fallback ? t(state.lang, "unknownBye", { text: reason }) : undefined)
  );
}

/** Asks HELP, quietly: its INFO lines say what this session may do. */
function askRights() {
  state.infoLines = [];
  send("HELP", { command: "HELP", quiet: true });
}

/**
 * What the INFO lines of HELP allow, by their first word. `TOPIC` is
 * listed to everyone (showing the topic); setting it (`TOPIC <topic>`) is
 * for exactly those who may KICK, so KICK says it.
 */
function rightsFrom(lines) {
  const can = noRights();
  for (const line of lines) {
    const keyword = line.trim().split(/\s+/)[0];
    switch (keyword.toUpperCase()) {
      case "KICK":
        can.kick = true;
        can.topic = true;
        break;
      case "BAN":
        can.ban = true;
        break;
      case "UNBAN":
        can.unban = true;
        break;
      case "BANS":
        can.bans = true;
        break;
      case "CLOSE":
        can.close = true;
        break;
      case "ANNOUNCE":
        can.announce = true;
        break;
    }
  }
  return can;
}

/** User and room names compare without regard to case. */
function sameName(a, b) {
  return typeof a === "string" && typeof b === "string" && a.toLowerCase() === b.toLowerCase();
}

function messageKey(m) {
  return `${m.time} ${m.user} ${m.text}`;
}

// ---------------------------------------------------------------------------
// 3. The page
// ---------------------------------------------------------------------------

/** Puts every static text of the page in the current language. */
function applyLanguage() {
  document.documentElement.lang = state.lang === "pt" ? "pt-BR" : "en";
  $("language").value = state.lang;
  for (const element of document.querySelectorAll("[data-i18n]")) {
    element.textContent = t(state.lang, element.dataset.i18n);
  }
  for (const element of document.querySelectorAll("[data-i18n-label]")) {
    element.setAttribute("aria-label", t(state.lang, element.dataset.i18nLabel));
  }
  drawRooms();
  drawRoom();
  drawBans();
  drawAnnouncement();
  setStatus();
}

/** The status bar: `key` for a passing state, else what the state says. */
function setStatus(key, params) {
  const status = $("status");
  let text;
  if (key) text = t(state.lang, key, params);
  else if (state.loggedIn) text = t(state.lang, "loggedInAs", { user: state.session.user });
  else if (state.ready) text = t(state.lang, "connected");
  else if (state.socket) text = t(state.lang, "connecting");
  else text = t(state.lang, "notConnected");
  status.textContent = text;
  status.classList.toggle("problem", key === "lost");
}

/** The login form or the chat, whichever fits the session. */
function showView() {
  const inside = state.loggedIn || state.session !== null;
  $("login-view").hidden = inside;
  $("chat-view").hidden = !inside;
  $("logout").hidden = !inside;
  if (!inside) {
    $("log").replaceChildren();
    state.rooms = [];
    state.members = [];
    state.topic = null;
    closeDialogs();
    drawRooms();
    drawRoom();
  }
}

function showError(text) {
  $("login-error").textContent = text;
  $("login-error").classList.add("error");
  if (state.loggedIn) addNotice(text, "error");
}

function showLoginMessage(text) {
  $("login-error").textContent = text;
  $("login-error").classList.remove("error");
}

/** The room list: each room a button whose text is its name alone. */
function drawRooms() {
  const list = $("room-list");
  list.replaceChildren();
  for (const room of state.rooms) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "secondary";
    button.textContent = room.name;
    if (sameName(room.name, state.room)) button.setAttribute("aria-current", "true");
    button.addEventListener("click", () => joinRoom(room));
    const meta = document.createElement("span");
    meta.className = "meta";
    const kind = t(state.lang, room.private ? "private" : "public");
    meta.textContent = `${kind}, ${t(state.lang, "online", { count: room.online })}`;
    if (room.private) {
      // A padlock drawn by style.css; the word "private" says it in text.
      const lock = document.createElement("span");
      lock.className = "lock";
      lock.setAttribute("aria-hidden", "true");
      item.append(button, lock, meta);
    } else {
      item.append(button, meta);
    }
    list.append(item);
  }
  $("no-rooms").hidden = state.rooms.length > 0 || !state.loggedIn;
}

/** The chat's heading, the leave button and the composer, for our room. */
function drawRoom() {
  const inRoom = state.room !== null;
  $("room-title").textContent = inRoom
    ? t(state.lang, "inRoom", { room: state.room })
    : t(state.lang, "noRoom");
  $("leave").hidden = !inRoom;
  $("members-panel").hidden = !inRoom;
  setComposerEnabled(inRoom && state.ready);
  drawRights();
  for (const button of $("room-list").querySelectorAll("button")) {
    if (sameName(button.textContent, state.room)) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
  }
}

/**
 * Everything that depends on what HELP said we may do: the member menus,
 * the topic bar's tools, the Announcement panel.
 */
function drawRights() {
  const inRoom = state.room !== null;
  $("edit-topic").hidden = !(inRoom && state.can.topic);
  $("show-bans").hidden = !(inRoom && state.can.bans);
  $("close-room").hidden = !(inRoom && state.can.close);
  $("announce-panel").hidden = !(state.loggedIn && state.can.announce);
  drawTopic();
  drawMembers();
}

/** The room's topic above its messages, with who set it and when. */
function drawTopic() {
  const topic = state.topic;
  const tools = [...$("room-tools").children].some((button) => !button.hidden);
  $("topic-bar").hidden = state.room === null || (!topic && !tools);
  const line = $("topic");
  line.replaceChildren();
  if (!topic) return;
  const label = document.createElement("strong");
  label.textContent = t(state.lang, "topicLabel");
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = topic.topic;
  const by = document.createElement("span");
  by.className = "meta";
  by.textContent = t(state.lang, "topicBy", { user: topic.by, time: clock(topic.time) });
  line.append(label, " ", text, " ", by);
}

/**
 * Who is in the room. When we may kick or ban here, each member but
 * ourselves gets an actions button (`Actions for bob`) that opens a menu:
 * Kick, Ban…. The arrow keys move in the menu, Escape closes it.
 */
function drawMembers() {
  $("members-summary").textContent = t(state.lang, "members", { count: state.members.length });
  const list = $("member-list");
  // The list is drawn anew; the focus goes back to the same control.
  const focused = list.contains(document.activeElement) ? document.activeElement.dataset : null;
  const refocus = focused ? { user: focused.user, action: focused.action } : null;
  list.replaceChildren();
  const moderate = state.room !== null && (state.can.kick || state.can.ban);
  if (!moderate) state.menuFor = null;
  state.members.forEach((user, index) => {
    const item = document.createElement("li");
    const name = document.createElement("span");
    name.textContent = user;
    item.append(name);
    if (moderate && !sameName(user, state.session?.user)) {
      item.append(memberActions(user, `member-menu-${index}`));
    }
    list.append(item);
  });
  if (refocus) {
    for (const control of list.querySelectorAll("button")) {
      if (control.dataset.user === refocus.user && control.dataset.action === refocus.action) {
        control.focus();
      }
    }
  }
}

/** One member's actions button and its menu (open if `state.menuFor`). */
function memberActions(user, id) {
  const open = sameName(state.menuFor, user);
  const wrap = document.createElement("span");
  wrap.className = "member-actions";
  const button = document.createElement("button");
  button.type = "button";
  button.className = "secondary menu-button";
  button.textContent = "⋯";
  button.dataset.user = user;
  button.dataset.action = "menu";
  button.setAttribute("aria-label", t(state.lang, "memberActions", { user }));
  button.setAttribute("aria-haspopup", "menu");
  button.setAttribute("aria-expanded", String(open));
  button.setAttribute("aria-controls", id);
  button.addEventListener("click", () => toggleMenu(user));
  button.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      openMenu(user, event.key === "ArrowDown" ? 0 : -1);
    }
  });
  const menu = document.createElement("ul");
  menu.id = id;
  menu.className = "menu";
  menu.setAttribute("role", "menu");
  menu.setAttribute("aria-label", t(state.lang, "memberActions", { user }));
  menu.hidden = !open;
  const actions = [
    ["kick", "kick", state.can.kick, () => openKick(user)],
    ["ban", "banEllipsis", state.can.ban, () => openBan(user)],
  ];
  for (const [action, key, allowed, run] of actions) {
    if (!allowed) continue;
    const item = document.createElement("li");
    item.setAttribute("role", "none");
    const choice = document.createElement("button");
    choice.type = "button";
    choice.setAttribute("role", "menuitem");
    choice.tabIndex = -1;
    choice.textContent = t(state.lang, key);
    choice.dataset.user = user;
    choice.dataset.action = action;
    choice.addEventListener("click", () => {
      closeMenu(true);
      run();
    });
    item.append(choice);
    menu.append(item);
  }
  menu.addEventListener("keydown", (event) => menuKey(event, menu));
  wrap.append(button, menu);
  return wrap;
}

function toggleMenu(user) {
  if (sameName(state.menuFor, user)) closeMenu(true);
  else openMenu(user, 0);
}

/** Opens `user`'s menu and puts the focus on its item `index` (-1: last). */
function openMenu(user, index) {
  state.menuFor = user;
  drawMembers();
  const items = [...$("member-list").querySelectorAll(".menu:not([hidden]) [role=menuitem]")];
  items.at(index)?.focus();
}

/** Closes the open menu; `refocus`: the focus goes back to its button. */
function closeMenu(refocus = false) {
  const user = state.menuFor;
  if (user === null) return;
  state.menuFor = null;
  drawMembers();
  if (!refocus) return;
  for (const button of $("member-list").querySelectorAll("[data-action=menu]")) {
    if (button.dataset.user === user) button.focus();
  }
}

/** The keys of a menu: arrows, Home and End move; Escape and Tab leave. */
function menuKey(event, menu) {
  const items = [...menu.querySelectorAll("[role=menuitem]")];
  const at = items.indexOf(document.activeElement);
  const move = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: items.length - 1 }[event.key];
  if (move !== undefined) {
    event.preventDefault();
    items[(move + items.length) % items.length]?.focus();
  } else if (event.key === "Escape") {
    event.preventDefault();
    closeMenu(true);
  } else if (event.key === "Tab") {
    // Back on the menu's button, so that Tab goes on from there.
    closeMenu(true);
  }
}

/** The list of the room's bans, each with its Unban button. */
function drawBans() {
  $("bans-heading").textContent = t(state.lang, "bansHeading", { room: state.room ?? "" });
  const list = $("ban-list");
  list.replaceChildren();
  for (const ban of state.bans ?? []) {
    const item = document.createElement("li");
    const who = document.createElement("strong");
    who.textContent = ban.user;
    const until =
      ban.until === "forever"
        ? t(state.lang, "banForever")
        : t(state.lang, "banUntil", { time: dateTime(ban.until) });
    const meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = `${until}, ${t(state.lang, "bannedBy", { user: ban.by })}`;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "secondary";
    button.textContent = t(state.lang, "unban");
    button.setAttribute("aria-label", t(state.lang, "unbanUser", { user: ban.user }));
    button.hidden = !state.can.unban;
    button.addEventListener("click", () => {
      $("bans-status").textContent = "";
      send(`UNBAN ${ban.user}`, { command: "UNBAN", user: ban.user, room: state.room });
    });
    item.append(who, " ", meta, " ", button);
    list.append(item);
  }
  $("no-bans").hidden = state.bans === null || state.bans.length > 0;
}

/**
 * The last announcement (NOTICE) in a banner above every view, until it
 * is dismissed; it is in the message list too.
 */
function drawAnnouncement() {
  const banner = $("announcement");
  banner.replaceChildren();
  const notice = state.announcement;
  if (!notice) return;
  const from = document.createElement("strong");
  from.textContent = t(state.lang, "announcementFrom", {
    user: notice.from,
    time: clock(notice.time),
  });
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = notice.text;
  const dismiss = document.createElement("button");
  dismiss.type = "button";
  dismiss.className = "secondary";
  dismiss.textContent = t(state.lang, "dismiss");
  dismiss.setAttribute("aria-label", t(state.lang, "dismissAnnouncement"));
  dismiss.addEventListener("click", () => {
    state.announcement = null;
    drawAnnouncement();
  });
  const body = document.createElement("p");
  body.append(from, " ", text);
  banner.append(body, dismiss);
}

/** A protocol `<time>` as the hour and minute here, or as it came. */
function clock(time) {
  const date = new Date(time);
  if (Number.isNaN(date.getTime())) return time;
  return date.toLocaleTimeString(state.lang === "pt" ? "pt-BR" : "en", {
    hour: "2-digit",
    minute: "2-digit",
  });
}

/** A protocol `<time>` as a short date and time here, or as it came. */
function dateTime(time) {
  const date = new Date(time);
  if (Number.isNaN(date.getTime())) return time;
  return date.toLocaleString(state.lang === "pt" ? "pt-BR" : "en", {
    dateStyle: "short",
    timeStyle: "short",
  });
}

/** Closes every moderation dialog and menu (we left the room, or the session). */
function closeDialogs() {
  for (const dialog of document.querySelectorAll("dialog[open]")) dialog.close();
}

function setComposerEnabled(enabled) {
  $("message").disabled = !enabled;
  $("composer").querySelector("button").disabled = !enabled;
}

/** Disables the login buttons while a LOGIN or REGISTER is on its way. */
function setBusy(busy) {
  for (const button of $("login-form").querySelectorAll("button")) button.disabled = busy;
}

/**
 * Adds one message to the list: its time, its author, its text. Each part
 * is set with textContent: whatever the text holds is shown, not obeyed.
 */
function addMessage({ time, user, text, kind = "" }) {
  if (kind !== "dm" && kind !== "announcement") state.shown.add(messageKey({ time, user, text }));
  const item = document.createElement("li");
  if (kind) item.className = kind;
  const stamp = document.createElement("time");
  stamp.dateTime = time;
  stamp.textContent = clock(time);
  const author = document.createElement("span");
  author.className = "author";
  author.textContent = `${user}:`;
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  // The spaces between the parts are text too: copied text and screen
  // readers get "10:42 ana: hello", not "10:42ana:hello".
  item.append(stamp, " ", author, " ", body);
  appendToLog(item);
}

/** Adds a line that is not a message: a join, a leave, an error. */
function addNotice(text, kind = "notice") {
  const item = document.createElement("li");
  item.className = kind;
  const span = document.createElement("span");
  span.className = "notice";
  span.textContent = text;
  item.append(span);
  appendToLog(item);
}

/** Appends to the list, keeps it bounded, and follows the newest line
 * unless the user has scrolled up to read older ones. */
function appendToLog(item) {
  const log = $("log");
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  log.append(item);
  while (log.childElementCount > MAX_LOG_ENTRIES) log.firstElementChild.remove();
  if (atBottom) log.scrollTop = log.scrollHeight;
}

/** Shows the password form for a private room. */
function askRoomPassword(room, problem) {
  const form = $("join-form");
  form.dataset.room = room;
  $("join-heading").textContent = t(state.lang, "joinPrivateHeading", { room });
  $("join-password").value = "";
  form.hidden = false;
  $("rooms-panel").open = true;
  if (problem) addNotice(problem, "error");
  $("join-password").focus();
}

// ---------------------------------------------------------------------------
// 4. The user's actions
// ---------------------------------------------------------------------------

function joinRoom(room) {
  if (sameName(room.name, state.room)) return;
  if (room.private) {
    askRoomPassword(room.name);
    return;
  }
  send(`JOIN ${room.name}`, { command: "JOIN", room: room.name });
}

$("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const user = $("login-user").value.trim();
  const password = $("login-password").value;
  if (!user || !password) return;
  const register = event.submitter?.value === "register";
  const command = register ? "REGISTER" : "LOGIN";
  showLoginMessage("");
  setBusy(true);
  if (!send(`${command} ${user} ${password}`, { command, user, password })) setBusy(false);
});

$("logout").addEventListener("click", () => {
  if (state.ready) {
    send("QUIT", { command: "QUIT" }); // BYE QUIT follows; then the socket closes
  } else {
    if (state.socket) dropConnection();
    forgetSession();
    showView();
    setStatus();
  }
  showLoginMessage(t(state.lang, "loggedOut"));
});

$("refresh-rooms").addEventListener("click", () => send("ROOMS", { command: "ROOMS" }));

// Other people create rooms and come and go: the list is asked for again
// when the Rooms panel is opened, and every 30 s while it is open in a tab
// that is on screen (a hidden tab asks for nothing).
$("rooms-panel").addEventListener("toggle", () => {
  if ($("rooms-panel").open && state.loggedIn) send("ROOMS", { command: "ROOMS" });
});
setInterval(() => {
  if (state.loggedIn && $("rooms-panel").open && document.visibilityState === "visible") {
    send("ROOMS", { command: "ROOMS" });
  }
}, ROOMS_REFRESH_MS);

$("join-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const room = event.currentTarget.dataset.room;
  const password = $("join-password").value;
  if (!password) return;
  event.currentTarget.hidden = true;
  send(`JOIN ${room} ${password}`, { command: "JOIN", room, password });
});

$("join-cancel").addEventListener("click", () => {
  $("join-form").hidden = true;
});

$("create-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const room = $("create-name").value.trim();
  const password = $("create-password").value;
  if (!room) return;
  send(password ? `CREATE ${room} ${password}` : `CREATE ${room}`, {
    command: "CREATE",
    room,
    private: password !== "",
  });
});

$("dm-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const to = $("dm-to").value.trim();
  const text = $("dm-text").value;
  if (!to || !text) return;
  if (send(`DM ${to} ${text}`, { command: "DM", to, text })) $("dm-text").value = "";
});

// Enter in the message field submits this form: the message is said.
$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $("message");
  const text = input.value;
  if (text.trim() === "" || !state.room) return;
  if (send(`SAY ${text}`, { command: "SAY", text })) input.value = "";
});

$("leave").addEventListener("click", () => send("LEAVE", { command: "LEAVE" }));

// Moderation: the member menus' Kick and Ban…, the topic, the bans, closing
// the room, announcements. Each asks in a dialog, then sends one command;
// its OK or ERR is said in the message list (see onOk, onErr).

/** Opens `dialog` with its heading set and no error shown. */
function openDialog(id, heading) {
  const dialog = $(id);
  dialog.querySelector("h2").textContent = heading;
  const error = dialog.querySelector(".dialog-error");
  if (error) error.textContent = "";
  dialog.showModal();
  return dialog;
}

/** A reason or topic field's text, or null when left blank. */
function optional(input) {
  return input.value.trim() === "" ? null : input.value;
}

function openKick(user) {
  const heading = t(state.lang, "kickHeading", { user, room: state.room });
  const dialog = openDialog("kick-dialog", heading);
  dialog.dataset.user = user;
  $("kick-reason").value = "";
  $("kick-reason").focus();
}

$("kick-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const dialog = $("kick-dialog");
  const user = dialog.dataset.user;
  const reason = optional($("kick-reason"));
  if (send(reason ? `KICK ${user} ${reason}` : `KICK ${user}`, { command: "KICK", user })) {
    dialog.close();
  }
});

function openBan(user) {
  const heading = t(state.lang, "banHeading", { user, room: state.room });
  const dialog = openDialog("ban-dialog", heading);
  dialog.dataset.user = user;
  $("ban-minutes").value = "";
  $("ban-reason").value = "";
  $("ban-minutes").focus();
}

$("ban-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const dialog = $("ban-dialog");
  const error = dialog.querySelector(".dialog-error");
  const user = dialog.dataset.user;
  const minutesText = $("ban-minutes").value.trim();
  const reason = optional($("ban-reason"));
  const minutes = Number(minutesText);
  const badMinutes =
    $("ban-minutes").validity.badInput ||
    (minutesText !== "" && !(/^[0-9]+$/.test(minutesText) && minutes >= 1 && minutes <= 525600));
  if (badMinutes) {
    error.textContent = t(state.lang, "badMinutes");
    $("ban-minutes").focus();
    return;
  }
  // The server reads a first word of digits after the user as the minutes.
  if (minutesText === "" && reason && /^[0-9]+(\s|$)/.test(reason)) {
    error.textContent = t(state.lang, "reasonStartsWithNumber");
    $("ban-reason").focus();
    return;
  }
  const line = ["BAN", user, minutesText, reason].filter(Boolean).join(" ");
  const entry = { command: "BAN", user, room: state.room, minutes: minutesText ? minutes : null };
  if (send(line, entry)) dialog.close();
});

$("edit-topic").addEventListener("click", () => {
  openDialog("topic-dialog", t(state.lang, "topicHeading", { room: state.room }));
  $("topic-text").value = state.topic?.topic ?? "";
  $("topic-text").focus();
});

$("topic-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const topic = optional($("topic-text"));
  if (!topic) return;
  if (send(`TOPIC ${topic}`, { command: "TOPIC", topic })) $("topic-dialog").close();
});

$("close-room").addEventListener("click", () => {
  const dialog = openDialog("close-dialog", t(state.lang, "closeHeading", { room: state.room }));
  dialog.dataset.room = state.room;
  // The safe choice has the focus: Enter alone does not delete a room.
  dialog.querySelector(".cancel").focus();
});

$("close-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const room = $("close-dialog").dataset.room;
  if (send(`CLOSE ${room}`, { command: "CLOSE", room })) $("close-dialog").close();
});

/** Asks the room's bans; the list is drawn at OK BANS. */
function askBans() {
  state.banLines = [];
  send("BANS", { command: "BANS" });
}

$("show-bans").addEventListener("click", () => {
  state.bans = null;
  drawBans();
  $("bans-status").textContent = "";
  $("bans-dialog").showModal();
  askBans();
});

$("announce-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = optional($("announce-text"));
  if (text) send(`ANNOUNCE ${text}`, { command: "ANNOUNCE", text });
});

for (const button of document.querySelectorAll("dialog .cancel")) {
  button.addEventListener("click", () => button.closest("dialog").close());
}

// A click anywhere but in the open member menu closes it.
document.addEventListener("click", (event) => {
  if (state.menuFor !== null && !event.target.closest?.(".member-actions")) closeMenu(false);
});

$("language").addEventListener("change", (event) => {
  if (event.target.value in catalogs) state.lang = event.target.value;
  applyLanguage();
});

applyLanguage();
showView();
