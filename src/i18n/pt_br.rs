//! O catálogo em português do Brasil: um braço por variante de [`Msg`].
//!
//! The Brazilian Portuguese catalog. Menus and chat lines follow the
//! original course client (`*** bob entrou na sala. ***`), which was written
//! in Portuguese.

use super::{readable_time, two_columns, BanInfo, CertProblem, Locale, Moderation, Msg, RoomInfo};
use crate::protocol::{ByeReason, ErrCode};

/// The Brazilian Portuguese text of `msg`.
pub fn text(msg: &Msg) -> String {
    match msg {
        Msg::InsecureWarning => "ATENÇÃO: --insecure: o certificado do servidor NÃO é verificado. \
             Qualquer um entre você e o servidor pode ler e alterar tudo, \
             inclusive a sua senha."
            .into(),
        Msg::HandshakePinned { version, file } => format!(
            "Handshake TLS bem-sucedido ({version}); o certificado do servidor é o de {file}."
        ),
        Msg::HandshakeCa {
            version,
            file,
            name,
        } => format!(
            "Handshake TLS bem-sucedido ({version}); certificado de {name} verificado com a CA de {file}."
        ),
        Msg::HandshakeSystem { version, name } => format!(
            "Handshake TLS bem-sucedido ({version}); certificado de {name} verificado com as CAs \
             confiáveis do sistema."
        ),
        Msg::HandshakeInsecure { version } => {
            format!("Handshake TLS bem-sucedido ({version}), SEM verificar o servidor.")
        }
        Msg::TrustFileUnusable { detail } => format!(
            "Não foi possível carregar o certificado confiável ({detail}). Rode o cliente na \
             pasta que tem o cert.pem do servidor, ou use --cert-pin ARQUIVO ou --ca ARQUIVO."
        ),
        Msg::SystemTrustUnusable { detail } => format!(
            "Não foi possível carregar as CAs confiáveis deste sistema ({detail}). Use --ca \
             ARQUIVO ou --cert-pin ARQUIVO."
        ),
        Msg::ClientCertUnusable { detail } => format!(
            "Não foi possível usar o seu certificado de cliente ({detail}). Confira os arquivos \
             dados em --cert e --key."
        ),
        Msg::PortWithHost { host, port } => format!(
            "{host}:{port} é um host e uma porta: dê só a porta, e o host com --host \
             (ex.: client --host {host} {port})."
        ),
        Msg::BadPort { given } => format!(
            "{given:?} não é um número de porta (1 a 65535): dê só a porta do servidor \
             (ex.: client 12345), e o host dele com --host."
        ),
        Msg::BadServerName { name } => {
            format!(
                "{name:?} não é um nome de host ou endereço IP válido: confira o --host (e o \
                 --server-name), ex.: --host 192.168.0.10 ou --host 0.tcp.sa.ngrok.io."
            )
        }
        Msg::CannotResolve { host, detail } => format!(
            "Não foi possível encontrar o servidor {host}: o nome não pôde ser resolvido \
             ({detail}). Confira o nome dado em --host (ou use o endereço IP do servidor) e a \
             rede deste computador."
        ),
        Msg::CannotConnect { addr, detail } => format!(
            "Não foi possível conectar a {addr} ({detail}). Confira se o servidor está rodando \
             e se a porta e o --host são os dele."
        ),
        Msg::CertificateNotPinned { file } => format!(
            "RECUSADO: o certificado do servidor não é o de {file}. Este pode não ser o servidor \
             certo, ou alguém está no meio do caminho. Nada foi enviado. Confira o --host e a \
             porta, e peça ao dono do servidor o cert.pem atual dele."
        ),
        Msg::CertificateNotTrusted {
            file,
            name,
            problem,
        } => refused(problem, name, &format!("pela CA de {file}")),
        Msg::CertificateNotTrustedSystem { name, problem } => {
            refused(problem, name, "por nenhuma CA em que este sistema confia")
        }
        Msg::HandshakeFailed { detail } => format!(
            "O handshake TLS falhou ({detail}). Confira se a porta e o --host são os do servidor \
             de chat (ele fala TLS) e tente de novo."
        ),
        Msg::UnknownProtocolVersion { version } => format!(
            "Atenção: o servidor fala a versão {version} do protocolo; este cliente fala a \
             versão 1, e pode não entender algumas respostas: atualize o cliente."
        ),

        Msg::StartMenu => "\
--- Menu ---
1 - Registrar
2 - Entrar (login)
3 - Sair
Escolha uma opção:"
            .into(),
        Msg::MainMenu { room } => {
            let mut menu = String::from(
                "\
--- Menu principal ---
1 - Listar salas
2 - Criar sala
3 - Entrar em uma sala
4 - Sair do programa",
            );
            if let Some(room) = room {
                menu.push_str(&format!(
                    "\n5 - Sair da sala {room}\n6 - Voltar ao chat da sala {room}"
                ));
            }
            menu.push_str("\nEscolha uma opção:");
            menu
        }
        Msg::InvalidOption => "Essa não é uma das opções: digite o número de uma delas.".into(),
        Msg::AskCredentials => "Digite usuário e senha na mesma linha (ex.: usuario1 123):".into(),
        Msg::CredentialsUsage => "Digite um nome de usuário, um espaço e a senha \
             (ex.: usuario1 123), ou uma linha vazia para voltar:"
            .into(),
        Msg::Registered { user } => {
            format!("Conta {user} criada. Agora entre com ela (opção 2).")
        }
        Msg::LoggedIn { user } => format!("Você entrou como {user}."),
        Msg::AskCreate => "Nome e tipo da sala: `nome n` para uma sala pública, \
             `nome s senha` para uma privada (linha vazia volta):"
            .into(),
        Msg::CreateUsage => "Digite `nome n` (pública) ou `nome s senha` (privada), \
             ou uma linha vazia para voltar:"
            .into(),
        Msg::Created { room, private } => {
            let kind = if *private { "privada" } else { "pública" };
            format!("Sala {kind} {room} criada.")
        }
        Msg::AskJoin => "Nome da sala, e a senha se for privada \
             (ex.: sala_privada senhasecreta; linha vazia volta):"
            .into(),
        Msg::RoomList { rooms } => room_list(rooms),
        Msg::EnteredRoom { room } => format!(
            "Você está na sala {room}. Digite para conversar; /menu abre o menu, \
             /leave sai da sala, /help lista os comandos."
        ),
        Msg::BackToChat { room } => format!("De volta ao chat da sala {room}."),
        Msg::LeftRoom { room } => format!("Você saiu da sala {room}."),
        Msg::HistoryStart { count: 1 } => "--- 1 mensagem anterior ---".into(),
        Msg::HistoryStart { count } => format!("--- {count} mensagens anteriores ---"),
        Msg::HistoryLine { room, user, text } => format!("  [{user}@{room}]: {text}"),
        Msg::HistoryEnd => "--- fim das mensagens anteriores ---".into(),
        Msg::Help { allowed } => help(allowed),
        Msg::UnknownChatCommand { command } => {
            format!("Comando desconhecido: {command}. Digite /help para ver a lista.")
        }
        Msg::MsgUsage => "Uso: /msg <usuário> <texto>".into(),
        Msg::ModerationUsage(command) => usage(*command),
        Msg::WhoList { users } => format!("Na sala ({}): {}", users.len(), users.join(", ")),
        Msg::DmDelivered { user } => format!("Mensagem direta entregue a {user}."),
        Msg::DmStored { user } => format!(
            "{user} está offline: a mensagem direta foi guardada e será entregue no próximo login."
        ),
        Msg::Goodbye => "Até logo!".into(),

        Msg::KickDone { user } => format!("Você removeu {user} da sala."),
        Msg::BanDone {
            user,
            room,
            minutes,
        } => match minutes {
            Some(1) => format!("{user} fica fora de {room} por 1 minuto."),
            Some(minutes) => format!("{user} fica fora de {room} por {minutes} minutos."),
            None => format!("{user} fica fora de {room} até o banimento ser retirado (/unban)."),
        },
        Msg::UnbanDone { user, room } => format!("{user} pode entrar de novo em {room}."),
        Msg::BanList { room, bans } => ban_list(room, bans),
        Msg::RoomTopic {
            room,
            by,
            time,
            topic,
        } => format!(
            "Tópico de {room}: {topic} (definido por {by} em {})",
            readable_time(*time, Locale::PtBr)
        ),
        Msg::NoTopic { room } => format!("A sala {room} não tem tópico."),
        Msg::CloseDone { room } => format!(
            "A sala {room} foi fechada: as mensagens, os banimentos e o tópico dela foram apagados."
        ),
        Msg::SuspendDone { user, minutes } => {
            let how_long = match minutes {
                Some(1) => "por 1 minuto".to_string(),
                Some(minutes) => format!("por {minutes} minutos"),
                None => "até a suspensão ser retirada (/unsuspend)".to_string(),
            };
            format!(
                "A conta {user} está suspensa {how_long}: as sessões dela foram encerradas e ela \
                 não consegue entrar."
            )
        }
        Msg::UnsuspendDone { user } => format!("A conta {user} pode entrar de novo."),
        Msg::AnnounceDone { count: 1 } => "Aviso enviado a 1 conexão.".into(),
        Msg::AnnounceDone { count } => format!("Aviso enviado a {count} conexões."),
        Msg::NotAllowed { admin_only: false } => "Só o dono da sala ou um administrador pode \
             fazer isso, e ninguém pode remover ou banir a si mesmo nem um administrador."
            .into(),
        Msg::NotAllowed { admin_only: true } => "Só um administrador pode fazer isso, e ninguém \
             pode suspender a si mesmo nem um administrador."
            .into(),
        Msg::NotAMember { user } => format!("{user} não está nesta sala."),

        Msg::Said { room, user, text } => format!("[{user}@{room}]: {text}"),
        Msg::UserJoined { user } => format!("*** {user} entrou na sala. ***"),
        Msg::UserLeft { user } => format!("*** {user} saiu da sala. ***"),
        Msg::UserDisconnected { user } => format!("*** {user} desconectou. ***"),
        Msg::DirectMessage { from, text } => format!("[mensagem direta de {from}]: {text}"),
        Msg::UserKicked { user } => format!("*** {user} foi removido da sala. ***"),
        Msg::YouWereKicked { room, by, reason } if reason.is_empty() => {
            format!("*** Você foi removido da sala {room} por {by}. ***")
        }
        Msg::YouWereKicked { room, by, reason } => {
            format!("*** Você foi removido da sala {room} por {by}: {reason} ***")
        }
        Msg::RoomClosed { room, by } => format!("*** A sala {room} foi fechada por {by}. ***"),
        Msg::TopicChanged { by, topic } => format!("*** {by} definiu o tópico: {topic} ***"),
        Msg::Notice { from, text } => format!("[AVISO de {from}]: {text}"),

        Msg::Error(code) => error(*code).into(),
        Msg::ErrorWithText { code, text } => with_text(error(*code), text),
        Msg::UnknownError { text } => format!("O servidor recusou: {text}"),
        Msg::ServerBye(reason) => bye(*reason).into(),
        Msg::SuspendedBye { text } => with_text(bye(ByeReason::Suspended), text),
        Msg::UnknownBye { text } => format!("O servidor encerrou a sessão: {text}"),
        Msg::ClientCertificateRequired => "O servidor só aceita clientes com certificado: \
            rode o cliente com --cert ARQUIVO --key ARQUIVO (seu professor fornece esses arquivos)."
            .into(),
        Msg::ClientCertificateRefused { detail } => format!(
            "O servidor recusou o seu certificado de cliente ({detail}): peça ao seu professor \
             um certificado que este servidor aceite."
        ),
        Msg::ConnectionLost { detail: None } => {
            "A conexão com o servidor caiu: rode o cliente de novo para reconectar.".into()
        }
        Msg::ConnectionLost {
            detail: Some(detail),
        } => format!("A conexão com o servidor caiu ({detail}): rode o cliente de novo para reconectar."),
        Msg::UnknownLine { line } => {
            format!("(o servidor mandou uma linha que este cliente não entende: {line})")
        }
    }
}

/// `RECUSADO: <por quê>. Nada foi enviado. <o que fazer>` para um
/// certificado verificado contra `anchors` ("pela CA de ca.pem", "por
/// nenhuma CA em que este sistema confia") para o nome `name`.
fn refused(problem: &CertProblem, name: &str, anchors: &str) -> String {
    let pin = "fixe o próprio certificado do servidor: --cert-pin ARQUIVO, \
               sendo ARQUIVO o cert.pem do servidor";
    let (why, next) = match problem {
        CertProblem::UnknownIssuer => (
            format!(
                "o certificado do servidor não foi assinado {anchors} (é autoassinado, \
                 ou feito por outra CA)"
            ),
            format!("Se este é o servidor da turma, {pin}."),
        ),
        CertProblem::WrongName => (
            format!("o certificado do servidor não é para o nome {name}"),
            format!("Dê um nome que ele tenha com --server-name NOME, ou {pin}."),
        ),
        CertProblem::Expired => (
            "o certificado do servidor expirou".to_string(),
            "Peça ao dono do servidor que o renove.".to_string(),
        ),
        CertProblem::NotValidYet => (
            "o certificado do servidor ainda não é válido".to_string(),
            "Confira a data e a hora deste computador.".to_string(),
        ),
        CertProblem::Revoked => (
            "o certificado do servidor foi revogado pela CA dele".to_string(),
            "Peça ao dono do servidor um novo.".to_string(),
        ),
        CertProblem::Other(detail) => (
            format!("o certificado do servidor para {name} foi recusado ({detail})"),
            format!("Se este é o servidor da turma, {pin}."),
        ),
    };
    format!("RECUSADO: {why}. Nada foi enviado. {next}")
}

/// As salas, uma por linha, ou uma dica quando não há nenhuma.
fn room_list(rooms: &[RoomInfo]) -> String {
    if rooms.is_empty() {
        return "Ainda não há salas: crie uma com a opção 2.".into();
    }
    let mut list = String::from("Salas:");
    for room in rooms {
        let kind = if room.private { "privada" } else { "pública" };
        list.push_str(&format!(
            "\n  {} ({kind}, {} online)",
            room.name, room.online
        ));
    }
    list
}

/// `sentence`, e depois o que o servidor disse, se disse algo.
fn with_text(sentence: &str, text: &str) -> String {
    if text.trim().is_empty() {
        sentence.to_owned()
    } else {
        format!("{sentence} O servidor diz: {text}")
    }
}

/// As colunas da esquerda e da direita de um comando de moderação no `/help`.
fn moderation_row(command: Moderation) -> (&'static str, &'static str) {
    match command {
        Moderation::Kick => ("/kick <usuário> [motivo]", "tira alguém da sala"),
        Moderation::Ban => (
            "/ban <usuário> [minutos] [motivo]",
            "impede alguém de entrar na sala (sem minutos: até ser retirado)",
        ),
        Moderation::Unban => ("/unban <usuário>", "retira um banimento"),
        Moderation::Bans => ("/bans", "lista os banimentos da sala"),
        Moderation::SetTopic => (
            "/topic [texto]",
            "mostra o tópico da sala, ou define um novo",
        ),
        Moderation::Close => (
            "/close [sala]",
            "fecha uma sala de vez, com as mensagens (por padrão, a sala em que você está)",
        ),
        Moderation::Suspend => (
            "/suspend <usuário> [minutos] [motivo]",
            "impede alguém de fazer login (sem minutos: até ser retirada)",
        ),
        Moderation::Unsuspend => ("/unsuspend <usuário>", "retira uma suspensão"),
        Moderation::Announce => ("/announce <texto>", "um aviso para todos os conectados"),
    }
}

/// A linha de uso de um comando de moderação digitado sem o que ele precisa.
fn usage(command: Moderation) -> String {
    match command {
        Moderation::Ban | Moderation::Suspend => format!(
            "Uso: {} (minutos: de 1 a 525600)",
            moderation_row(command).0
        ),
        Moderation::Close => "Uso: /close <sala> (ou /close sozinho, na sala a fechar)".into(),
        _ => format!("Uso: {}", moderation_row(command).0),
    }
}

/// Os comandos do chat, com os comandos de moderação de `allowed`.
fn help(allowed: &[Moderation]) -> String {
    let mut rows = vec![
        ("/menu", "abre o menu (você continua na sala)"),
        ("/leave", "sai da sala"),
        ("/who", "quem está na sala"),
        ("/msg <usuário> <texto>", "envia uma mensagem direta"),
    ];
    if !allowed.contains(&Moderation::SetTopic) {
        rows.push(("/topic", "mostra o tópico da sala"));
    }
    rows.extend(allowed.iter().map(|&command| moderation_row(command)));
    rows.push(("/help", "esta ajuda"));
    rows.push(("/quit", "sai do programa"));
    format!(
        "Comandos do chat:\n{}\nQualquer outra coisa é dita na sala. No menu principal, uma \
         linha que começa com / é um destes comandos.",
        two_columns(&rows)
    )
}

/// Os banimentos de uma sala, um por linha, ou uma frase quando não há nenhum.
fn ban_list(room: &str, bans: &[BanInfo]) -> String {
    if bans.is_empty() {
        return format!("Ninguém está banido de {room}.");
    }
    let mut list = format!("Banimentos em {room} ({}):", bans.len());
    for ban in bans {
        let until = match ban.until {
            Some(time) => format!("até {}", readable_time(time, Locale::PtBr)),
            None => "até ser retirado".to_string(),
        };
        list.push_str(&format!("\n  {} {until}, por {}", ban.user, ban.by));
    }
    list
}

/// Uma frase por código de erro.
fn error(code: ErrCode) -> &'static str {
    match code {
        ErrCode::BadArgs => "Falta ou sobra algo nesse comando: confira e tente de novo.",
        ErrCode::BadName => "Nomes têm de 1 a 32 caracteres: letras A-Z, dígitos, _, - e pontos.",
        ErrCode::BadPassword => "Senhas têm de 1 a 128 bytes, sem caracteres de controle.",
        ErrCode::UserExists => {
            "Esse nome de usuário já existe: escolha outro, ou entre se for seu."
        }
        ErrCode::BadCredentials => {
            "Usuário ou senha incorretos: confira os dois e tente de novo, ou registre-se antes."
        }
        ErrCode::AlreadyLoggedIn => "Você já está logado.",
        ErrCode::RateLimited => "Muito rápido: espere um pouco e tente de novo.",
        ErrCode::NotLoggedIn => "Faça login primeiro.",
        ErrCode::RoomExists => {
            "Já existe uma sala com esse nome: entre nela, ou escolha outro nome."
        }
        ErrCode::NoSuchRoom => "Não existe sala com esse nome: liste as salas, ou crie-a.",
        ErrCode::BadRoomPassword => {
            "Senha incorreta ou ausente: essa sala é privada; entre com o nome e a senha dela \
             (ex.: sala_privada senhasecreta)."
        }
        ErrCode::AlreadyInRoom => "Você já está nessa sala.",
        ErrCode::NotInRoom => "Você não está em nenhuma sala: entre em uma antes.",
        ErrCode::BadText => "Mensagens não podem ser vazias nem conter caracteres de controle.",
        ErrCode::NoSuchUser => "Não existe usuário com esse nome: confira como se escreve.",
        ErrCode::UnknownCommand => "O servidor não entendeu esse comando.",
        ErrCode::LineTooLong => {
            "Essa linha é longa demais (no máximo 4096 bytes): mande-a em partes menores."
        }
        ErrCode::BadEncoding => "Essa linha não era UTF-8 válido: configure o terminal para UTF-8.",
        ErrCode::ServerError => "O servidor não conseguiu fazer isso agora; tente de novo.",
        ErrCode::TooManyRooms => {
            "Há salas demais, ou você já é dono de todas as salas que pode ter: entre em uma sala existente."
        }
        ErrCode::RegistrationClosed => {
            "Este servidor não aceita novas contas; peça uma ao professor."
        }
        ErrCode::MailboxFull => "Esse usuário tem mensagens demais esperando; tente mais tarde.",
        ErrCode::NotAllowed => {
            "Você não pode fazer isso: é preciso ser o dono da sala ou um administrador."
        }
        ErrCode::Banned => "Um banimento impede você de entrar nessa sala.",
        ErrCode::NotBanned => "Esse usuário não está banido desta sala.",
        ErrCode::Suspended => {
            "Sua conta está suspensa: não dá para fazer login enquanto a suspensão durar."
        }
        ErrCode::NotSuspended => "Essa conta não está suspensa.",
    }
}

/// Uma frase por motivo que o servidor dá para encerrar.
fn bye(reason: ByeReason) -> &'static str {
    match reason {
        ByeReason::Quit => "Sessão encerrada, como você pediu.",
        ByeReason::Shutdown => {
            "O servidor está sendo desligado: rode o cliente de novo quando ele voltar."
        }
        ByeReason::LoginTimeout => {
            "Você não fez login a tempo; o servidor fechou a conexão: rode o cliente de novo."
        }
        ByeReason::LoggedInElsewhere => "Você entrou em outro lugar; esta sessão foi encerrada.",
        ByeReason::SlowConsumer => {
            "O servidor derrubou esta conexão: ela não estava lendo rápido o bastante. Rode o \
             cliente de novo."
        }
        ByeReason::TooManyConnections => "O servidor está lotado; tente mais tarde.",
        ByeReason::Idle => {
            "O servidor encerrou a sessão: nada foi enviado por tempo demais. Rode o cliente de novo."
        }
        ByeReason::Suspended => "Um administrador suspendeu sua conta; esta sessão foi encerrada.",
    }
}
