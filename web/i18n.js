// The web client's texts, in English and Brazilian Portuguese.
//
// Every sentence the page shows lives here, one key per sentence, in both
// languages. The wording follows the terminal client's (src/i18n/), adapted
// where a browser differs from a terminal (a button instead of a menu
// option, reconnecting by itself instead of "run the client again").
//
// A text with a `{name}` in it is filled in by `t()`; the values are plain
// strings and the result is always inserted as text, never as HTML.

const en = {
  title: "Chat",
  language: "Language",

  // The connection, shown in the status bar.
  notConnected: "Not connected.",
  connecting: "Connecting…",
  connected: "Connected.",
  loggedInAs: "Logged in as {user}.",
  lost: "The connection to the server was lost. Trying again in {seconds} s…",
  cannotConnect: "Cannot reach the server: check the address and your network, then try again.",
  reconnected: "Connected again; you are logged in and back where you were.",
  otherVersion:
    "The server speaks protocol version {version}; this page speaks version 1, so some replies may not be understood.",

  // The login form.
  loginHeading: "Log in or register",
  loginHint: "New here? Choose a user name and a password, press Register, then Log in.",
  userName: "User name",
  password: "Password",
  register: "Register",
  logIn: "Log in",
  logOut: "Log out",
  registered: "Account {user} created. Now log in.",
  loggedOut: "You logged out.",

  // The rooms.
  rooms: "Rooms",
  refresh: "Refresh",
  noRooms: "No rooms yet: create one.",
  online: "{count} online",
  public: "public",
  private: "private",
  createHeading: "Create a room",
  roomName: "Room name",
  roomPassword: "Password (only for a private room)",
  create: "Create",
  createdPublic: "Public room {room} created.",
  createdPrivate: "Private room {room} created.",
  joinPrivateHeading: "The room {room} is private",
  roomPasswordOf: "Password of the room",
  join: "Join",
  cancel: "Cancel",

  // The chat.
  noRoom: "Choose a room in the list to chat.",
  inRoom: "Room {room}",
  enteredRoom: "You are in {room}. Type a message and press Enter.",
  leaveRoom: "Leave the room",
  leftRoom: "You left {room}.",
  members: "In the room ({count})",
  message: "Message",
  send: "Send",
  chatLog: "Messages",
  historyStart1: "--- 1 earlier message ---",
  historyStart: "--- {count} earlier messages ---",
  historyEnd: "--- end of earlier messages ---",
  userJoined: "*** {user} joined the room. ***",
  userLeft: "*** {user} left the room. ***",
  userDisconnected: "*** {user} disconnected. ***",

  // Direct messages.
  dmHeading: "Direct message",
  dmTo: "To (user name)",
  dmText: "Direct message text",
  dmFrom: "DM from {user}",
  dmToLabel: "DM to {user}",
  dmDelivered: "Direct message delivered to {user}.",
  dmStored:
    "{user} is offline: the direct message is stored and will be delivered at their next login.",

  // Moderation (owners of a room and admins; see docs/WEB.md).
  memberActions: "Actions for {user}",
  kick: "Kick",
  banEllipsis: "Ban…",
  ban: "Ban",
  kickHeading: "Remove {user} from {room}",
  banHeading: "Ban {user} from {room}",
  reasonOptional: "Reason (optional)",
  banMinutes: "Minutes (empty: until lifted)",
  badMinutes: "Minutes must be a whole number from 1 to 525600, or empty for a ban until lifted.",
  reasonStartsWithNumber:
    "Without minutes, the reason cannot start with a number (it would be read as the minutes): reword it.",
  kickDone: "You removed {user} from the room.",
  notInThisRoom: "{user} is not in this room.",
  banDoneMinutes: "{user} is banned from {room} for {minutes} minutes.",
  banDoneForever: "{user} is banned from {room} until you lift the ban.",
  unbanDone: "{user} may join {room} again.",
  userKicked: "*** {user} was removed from the room. ***",
  youWereKicked: "You were removed from {room} by {by}.",
  youWereKickedReason: "You were removed from {room} by {by}: {reason}",
  roomClosedBy: "The room {room} was closed by {by}; you are in no room now.",
  roomClosed: "You closed the room {room}.",
  topicLabel: "Topic:",
  topicBy: "(set by {user}, {time})",
  topicChanged: "*** {user} changed the topic: {topic} ***",
  editTopic: "Edit topic",
  topicHeading: "Topic of {room}",
  topicText: "New topic",
  saveTopic: "Save topic",
  closeRoom: "Close room",
  closeHeading: "Close the room {room}?",
  closeWarning:
    "Everyone in it is sent out, and its messages, bans and topic are deleted. This cannot be undone.",
  closeRoomConfirm: "Close the room",
  bans: "Bans",
  bansHeading: "Bans in {room}",
  noBans: "Nobody is banned from this room.",
  banUntil: "until {time}",
  banForever: "until lifted",
  bannedBy: "by {user}",
  unban: "Unban",
  unbanUser: "Unban {user}",
  done: "Done",
  announceHeading: "Announcement",
  announceText: "Announcement text",
  announce: "Announce",
  announceDone: "Announcement sent to {count} connections.",
  announcementFrom: "Announcement from {user} ({time}):",
  announcementLog: "Announcement from {user}",
  dismiss: "Dismiss",
  dismissAnnouncement: "Dismiss the announcement",

  tooLong: "That message is too long (4096 bytes at most with its command): send it in shorter parts.",
  unknownLine: "(the server sent a line this page does not understand: {line})",

  // One sentence per protocol error code (ERR <CODE> <text>).
  errors: {
    BAD_ARGS: "Something is missing or extra in that command: check it and try again.",
    BAD_NAME: "Names have 1 to 32 characters: letters A-Z, digits, _, - and dots.",
    BAD_PASSWORD: "Passwords have 1 to 128 bytes and no control characters.",
    USER_EXISTS: "That user name is taken: choose another, or log in if it is yours.",
    BAD_CREDENTIALS: "Wrong user name or password: check both and try again, or register first.",
    ALREADY_LOGGED_IN: "You are logged in already.",
    RATE_LIMITED: "Too fast: wait a moment and try again.",
    NOT_LOGGED_IN: "Log in first.",
    ROOM_EXISTS: "A room with that name exists already: join it, or choose another name.",
    NO_SUCH_ROOM: "There is no room with that name: refresh the list, or create it.",
    BAD_ROOM_PASSWORD: "Wrong or missing password: that room is private; type its password.",
    ALREADY_IN_ROOM: "You are in that room already.",
    NOT_IN_ROOM: "You are not in a room: join one first.",
    BAD_TEXT: "Messages must not be blank or contain control characters.",
    NO_SUCH_USER: "There is no user with that name: check how it is spelled.",
    UNKNOWN_COMMAND: "The server did not understand that command.",
    LINE_TOO_LONG: "That line is too long (4096 bytes at most): send it in shorter parts.",
    BAD_ENCODING: "That line was not valid UTF-8.",
    SERVER_ERROR: "The server could not do that right now; try again.",
    TOO_MANY_ROOMS: "There are too many rooms, or you own as many as you may: join an existing room.",
    REGISTRATION_CLOSED: "This server does not take new accounts; ask the teacher for one.",
    MAILBOX_FULL: "That user has too many messages waiting; try again later.",
    NOT_ALLOWED: "Not allowed: {text}",
    BANNED: "You are banned from that room: {text}",
    NOT_BANNED: "That user is not banned from this room.",
    SUSPENDED: "This account is suspended: {text}",
    NOT_SUSPENDED: "That account is not suspended.",
  },
  unknownError: "The server refused that: {text}",

  // One sentence per reason the server gives for closing (BYE <REASON>).
  byes: {
    QUIT: "The session is closed, as you asked.",
    SHUTDOWN: "The server is shutting down.",
    LOGIN_TIMEOUT: "You did not log in in time; the server closed the connection.",
    LOGGED_IN_ELSEWHERE: "You logged in somewhere else; this session was closed.",
    SLOW_CONSUMER: "The server dropped this connection: it was not reading fast enough.",
    TOO_MANY_CONNECTIONS: "The server is full.",
    IDLE: "The server closed this session: nothing was sent for too long. Log in again.",
    SUSPENDED: "An administrator suspended your account: {text}",
  },
  unknownBye: "The server closed the connection: {text}",
};

const pt = {
  title: "Chat",
  language: "Idioma",

  notConnected: "Não conectado.",
  connecting: "Conectando…",
  connected: "Conectado.",
  loggedInAs: "Você entrou como {user}.",
  lost: "A conexão com o servidor caiu. Tentando de novo em {seconds} s…",
  cannotConnect:
    "Não foi possível falar com o servidor: confira o endereço e a sua rede, e tente de novo.",
  reconnected: "Conectado de novo; você entrou e está onde estava.",
  otherVersion:
    "O servidor fala a versão {version} do protocolo; esta página fala a versão 1, e pode não entender algumas respostas.",

  loginHeading: "Entre ou registre-se",
  loginHint: "Primeira vez? Escolha um usuário e uma senha, aperte Registrar, depois Entrar.",
  userName: "Usuário",
  password: "Senha",
  register: "Registrar",
  logIn: "Entrar",
  logOut: "Sair",
  registered: "Conta {user} criada. Agora entre com ela.",
  loggedOut: "Você saiu.",

  rooms: "Salas",
  refresh: "Atualizar",
  noRooms: "Ainda não há salas: crie uma.",
  online: "{count} online",
  public: "pública",
  private: "privada",
  createHeading: "Criar sala",
  roomName: "Nome da sala",
  roomPassword: "Senha (só para sala privada)",
  create: "Criar",
  createdPublic: "Sala pública {room} criada.",
  createdPrivate: "Sala privada {room} criada.",
  joinPrivateHeading: "A sala {room} é privada",
  roomPasswordOf: "Senha da sala",
  join: "Entrar na sala",
  cancel: "Cancelar",

  noRoom: "Escolha uma sala na lista para conversar.",
  inRoom: "Sala {room}",
  enteredRoom: "Você está na sala {room}. Digite uma mensagem e aperte Enter.",
  leaveRoom: "Sair da sala",
  leftRoom: "Você saiu da sala {room}.",
  members: "Na sala ({count})",
  message: "Mensagem",
  send: "Enviar",
  chatLog: "Mensagens",
  historyStart1: "--- 1 mensagem anterior ---",
  historyStart: "--- {count} mensagens anteriores ---",
  historyEnd: "--- fim das mensagens anteriores ---",
  userJoined: "*** {user} entrou na sala. ***",
  userLeft: "*** {user} saiu da sala. ***",
  userDisconnected: "*** {user} desconectou. ***",

  dmHeading: "Mensagem direta",
  dmTo: "Para (usuário)",
  dmText: "Texto da mensagem direta",
  dmFrom: "mensagem direta de {user}",
  dmToLabel: "mensagem direta para {user}",
  dmDelivered: "Mensagem direta entregue a {user}.",
  dmStored:
    "{user} está offline: a mensagem direta foi guardada e será entregue no próximo login.",

  memberActions: "Ações para {user}",
  kick: "Expulsar",
  banEllipsis: "Banir…",
  ban: "Banir",
  kickHeading: "Expulsar {user} da sala {room}",
  banHeading: "Banir {user} da sala {room}",
  reasonOptional: "Motivo (opcional)",
  banMinutes: "Minutos (vazio: até ser revogado)",
  badMinutes:
    "Os minutos devem ser um número inteiro de 1 a 525600, ou vazio para banir até revogar.",
  reasonStartsWithNumber:
    "Sem minutos, o motivo não pode começar com um número (seria lido como os minutos): reescreva-o.",
  kickDone: "Você expulsou {user} da sala.",
  notInThisRoom: "{user} não está nesta sala.",
  banDoneMinutes: "{user} está banido(a) da sala {room} por {minutes} minutos.",
  banDoneForever: "{user} está banido(a) da sala {room} até você revogar o banimento.",
  unbanDone: "{user} pode entrar na sala {room} de novo.",
  userKicked: "*** {user} foi expulso(a) da sala. ***",
  youWereKicked: "Você foi expulso(a) da sala {room} por {by}.",
  youWereKickedReason: "Você foi expulso(a) da sala {room} por {by}: {reason}",
  roomClosedBy: "A sala {room} foi fechada por {by}; você não está em nenhuma sala agora.",
  roomClosed: "Você fechou a sala {room}.",
  topicLabel: "Tópico:",
  topicBy: "(definido por {user}, {time})",
  topicChanged: "*** {user} mudou o tópico: {topic} ***",
  editTopic: "Editar tópico",
  topicHeading: "Tópico da sala {room}",
  topicText: "Novo tópico",
  saveTopic: "Salvar tópico",
  closeRoom: "Fechar sala",
  closeHeading: "Fechar a sala {room}?",
  closeWarning:
    "Todos nela são retirados, e as mensagens, os banimentos e o tópico dela são apagados. Não dá para desfazer.",
  closeRoomConfirm: "Fechar a sala",
  bans: "Banimentos",
  bansHeading: "Banimentos na sala {room}",
  noBans: "Ninguém está banido desta sala.",
  banUntil: "até {time}",
  banForever: "até ser revogado",
  bannedBy: "por {user}",
  unban: "Revogar",
  unbanUser: "Revogar banimento de {user}",
  done: "Pronto",
  announceHeading: "Aviso",
  announceText: "Texto do aviso",
  announce: "Avisar a todos",
  announceDone: "Aviso enviado a {count} conexões.",
  announcementFrom: "Aviso de {user} ({time}):",
  announcementLog: "Aviso de {user}",
  dismiss: "Fechar",
  dismissAnnouncement: "Fechar o aviso",

  tooLong:
    "Essa mensagem é longa demais (no máximo 4096 bytes com o comando): mande-a em partes menores.",
  unknownLine: "(o servidor mandou uma linha que esta página não entende: {line})",

  errors: {
    BAD_ARGS: "Falta ou sobra algo nesse comando: confira e tente de novo.",
    BAD_NAME: "Nomes têm de 1 a 32 caracteres: letras A-Z, dígitos, _, - e pontos.",
    BAD_PASSWORD: "Senhas têm de 1 a 128 bytes, sem caracteres de controle.",
    USER_EXISTS: "Esse nome de usuário já existe: escolha outro, ou entre se for seu.",
    BAD_CREDENTIALS:
      "Usuário ou senha incorretos: confira os dois e tente de novo, ou registre-se antes.",
    ALREADY_LOGGED_IN: "Você já está logado.",
    RATE_LIMITED: "Muito rápido: espere um pouco e tente de novo.",
    NOT_LOGGED_IN: "Faça login primeiro.",
    ROOM_EXISTS: "Já existe uma sala com esse nome: entre nela, ou escolha outro nome.",
    NO_SUCH_ROOM: "Não existe sala com esse nome: atualize a lista, ou crie-a.",
    BAD_ROOM_PASSWORD: "Senha incorreta ou ausente: essa sala é privada; digite a senha dela.",
    ALREADY_IN_ROOM: "Você já está nessa sala.",
    NOT_IN_ROOM: "Você não está em nenhuma sala: entre em uma antes.",
    BAD_TEXT: "Mensagens não podem ser vazias nem conter caracteres de controle.",
    NO_SUCH_USER: "Não existe usuário com esse nome: confira como se escreve.",
    UNKNOWN_COMMAND: "O servidor não entendeu esse comando.",
    LINE_TOO_LONG: "Essa linha é longa demais (no máximo 4096 bytes): mande-a em partes menores.",
    BAD_ENCODING: "Essa linha não era UTF-8 válido.",
    SERVER_ERROR: "O servidor não conseguiu fazer isso agora; tente de novo.",
    TOO_MANY_ROOMS:
      "Há salas demais, ou você já é dono de todas as salas que pode ter: entre em uma sala existente.",
    REGISTRATION_CLOSED: "Este servidor não aceita novas contas; peça uma ao professor.",
    MAILBOX_FULL: "Esse usuário tem mensagens demais esperando; tente mais tarde.",
    NOT_ALLOWED: "Não permitido: {text}",
    BANNED: "Você está banido(a) dessa sala: {text}",
    NOT_BANNED: "Esse usuário não está banido desta sala.",
    SUSPENDED: "Esta conta está suspensa: {text}",
    NOT_SUSPENDED: "Essa conta não está suspensa.",
  },
  unknownError: "O servidor recusou isso: {text}",

  byes: {
    QUIT: "Sessão encerrada, como você pediu.",
    SHUTDOWN: "O servidor está sendo desligado.",
    LOGIN_TIMEOUT: "Você não fez login a tempo; o servidor fechou a conexão.",
    LOGGED_IN_ELSEWHERE: "Você entrou em outro lugar; esta sessão foi encerrada.",
    SLOW_CONSUMER: "O servidor derrubou esta conexão: ela não estava lendo rápido o bastante.",
    TOO_MANY_CONNECTIONS: "O servidor está lotado.",
    IDLE: "O servidor encerrou a sessão: nada foi enviado por tempo demais. Entre de novo.",
    SUSPENDED: "Um administrador suspendeu a sua conta: {text}",
  },
  unknownBye: "O servidor fechou a conexão: {text}",
};

/** The catalogs by language code; the keys of the language menu. */
export const catalogs = { en, pt };

/**
 * The language to start in, from the browser's preferred languages:
 * the first one that is Portuguese (`pt`, `pt-BR`, `pt-PT`) or English
 * wins; anything else gives English.
 */
export function pickLanguage(preferred) {
  for (const tag of preferred) {
    const base = String(tag).toLowerCase().split("-")[0];
    if (base === "pt" || base === "en") return base;
  }
  return "en";
}

/**
 * The text `key` in `lang`, with each `{name}` replaced by `params[name]`.
 * A key may be a path into a group: `errors.BAD_NAME`. An unknown key
 * gives `undefined`, so the caller can fall back to another text.
 */
export function t(lang, key, params = {}) {
  let text = key.split(".").reduce((group, part) => group?.[part], catalogs[lang]);
  if (typeof text !== "string") return undefined;
  return text.replace(/\{(\w+)\}/g, (whole, name) =>
    name in params ? String(params[name]) : whole,
  );
}
