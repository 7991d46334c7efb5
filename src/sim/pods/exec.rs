//! `exec` and `attach` sessions of the simulated cluster over the channel protocols: the
//! requested streams, a small built-in command set whose results tests can check (`echo`,
//! `cat`, `true`, `false`, `exit N`, `sh -c "a; b && c"`, an interactive `sh`, `env`,
//! `hostname`, `sleep`, `pwd`, `whoami`), and the exit status reported as the real API
//! server does: a `Status` on channel 3 for v4 and v5, plain text for older versions.

use super::channel::{Channels, Version, CLOSE_SIGNAL};
use super::logs;
use super::store::Pod;
use super::ws::WsReceiver;
use bytes::Bytes;
use serde_json::json;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tokio::sync::mpsc;

/// Standard channel numbers.
const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;

/// What the client asked for.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// The command (`command=` query values); empty for attach.
    pub command: Vec<String>,
    /// `stdin=true`.
    pub stdin: bool,
    /// `stdout=true`.
    pub stdout: bool,
    /// `stderr=true`.
    pub stderr: bool,
    /// `tty=true`.
    pub tty: bool,
    /// Container name (resolved).
    pub container: String,
}

/// Runs an exec (`attach == false`) or attach session until the command ends or the
/// client goes away.
pub(crate) async fn session(
    mut rx: WsReceiver,
    ch: Channels,
    version: Version,
    pod: Pod,
    opts: Options,
    attach: bool,
) {
    let (stdin_tx, stdin_rx) = mpsc::channel::<Bytes>(16);
    let mut io = Io {
        stdin: opts.stdin.then_some(stdin_rx),
        ch: ch.clone(),
        stdout: opts.stdout,
        stderr: opts.stderr && !opts.tty,
        tty: opts.tty,
        pod: &pod,
        container: &opts.container,
    };
    let reader = async {
        let mut stdin_tx = opts.stdin.then_some(stdin_tx);
        while let Some(msg) = rx.next().await {
            let Some((channel, data)) = ch.decode(msg) else {
                continue;
            };
            match channel {
                STDIN => {
                    if let Some(tx) = &stdin_tx {
                        if tx.send(data).await.is_err() {
                            stdin_tx = None;
                        }
                    }
                }
                CLOSE_SIGNAL if version == Version::V5 && data.first() == Some(&STDIN) => {
                    stdin_tx = None;
                }
                RESIZE => {}
                _ => {}
            }
        }
    };
    let run = async {
        if attach {
            attach_main(&mut io).await
        } else {
            run_argv(&opts.command, &mut io).await.code
        }
    };
    let code = tokio::select! {
        code = run => code,
        _ = reader => return,
    };
    let text = opts.command.join(" ");
    match version {
        Version::V4 | Version::V5 => {
            let status = if code == 0 {
                json!({"metadata": {}, "status": "Success"})
            } else {
                json!({
                    "metadata": {},
                    "status": "Failure",
                    "message": format!("command terminated with non-zero exit code: error executing command [{text}], exit code {code}"),
                    "reason": "NonZeroExitCode",
                    "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]}
                })
            };
            let _ = ch.send(ERROR, status.to_string().as_bytes()).await;
        }
        _ => {
            if code != 0 {
                let msg = format!("command terminated with non-zero exit code: error executing command [{text}], exit code {code}");
                let _ = ch.send(ERROR, msg.as_bytes()).await;
            }
        }
    }
    ch.sender().close_normal().await;
}

/// The streams a built-in command sees.
struct Io<'a> {
    stdin: Option<mpsc::Receiver<Bytes>>,
    ch: Channels,
    stdout: bool,
    stderr: bool,
    tty: bool,
    pod: &'a Pod,
    container: &'a str,
}

impl Io<'_> {
    async fn out(&self, data: &[u8]) {
        if self.stdout {
            let _ = self.ch.send(STDOUT, &self.tty_out(data)).await;
        }
    }

    async fn err(&self, data: &[u8]) {
        if self.stderr {
            let _ = self.ch.send(STDERR, data).await;
        } else if self.tty {
            self.out(data).await;
        }
    }

    /// A terminal turns `\n` into `\r\n`.
    fn tty_out(&self, data: &[u8]) -> Vec<u8> {
        if !self.tty {
            return data.to_vec();
        }
        let mut out = Vec::with_capacity(data.len() + 8);
        let mut prev = 0u8;
        for &b in data {
            if b == b'\n' && prev != b'\r' {
                out.push(b'\r');
            }
            out.push(b);
            prev = b;
        }
        out
    }

    async fn read_stdin(&mut self) -> Option<Bytes> {
        match &mut self.stdin {
            Some(rx) => rx.recv().await,
            None => None,
        }
    }
}

/// The result of a command: its exit code, and whether the shell must stop (`exit`).
#[derive(Debug, Clone, Copy)]
struct Outcome {
    code: i32,
    exit: bool,
}

fn done(code: i32) -> Outcome {
    Outcome { code, exit: false }
}

type BoxFut<'a> = Pin<Box<dyn Future<Output = Outcome> + 'a>>;

/// Runs one command line (argv) with the built-in command set.
fn run_argv<'a, 'b: 'a>(argv: &'a [String], io: &'a mut Io<'b>) -> BoxFut<'a> {
    Box::pin(async move {
        let Some(cmd) = argv.first() else {
            return done(0);
        };
        let args = &argv[1..];
        let name = cmd.rsplit('/').next().unwrap_or(cmd);
        match name {
            "echo" => {
                let (newline, words) = match args.first().map(String::as_str) {
                    Some("-n") => (false, &args[1..]),
                    _ => (true, args),
                };
                let mut s = words.join(" ");
                if newline {
                    s.push('\n');
                }
                io.out(s.as_bytes()).await;
                done(0)
            }
            "cat" => {
                if let Some(f) = args.iter().find(|a| a.as_str() != "-") {
                    io.err(
                        format!("cat: can't open '{f}': No such file or directory\n").as_bytes(),
                    )
                    .await;
                    return done(1);
                }
                while let Some(data) = io.read_stdin().await {
                    io.out(&data).await;
                }
                done(0)
            }
            "true" | ":" => done(0),
            "false" => done(1),
            "exit" => {
                let code = args
                    .first()
                    .map(|a| a.parse::<i64>().map(|c| (c & 0xff) as i32).unwrap_or(2))
                    .unwrap_or(0);
                Outcome { code, exit: true }
            }
            "sh" | "bash" | "ash" => match args.first().map(String::as_str) {
                Some("-c") => match args.get(1) {
                    Some(script) => {
                        let out = run_script(script, io).await;
                        done(out.code)
                    }
                    None => {
                        io.err(b"sh: -c requires an argument\n").await;
                        done(2)
                    }
                },
                _ => done(interactive(io).await),
            },
            "env" | "printenv" => {
                let env = env_lines(io.pod, io.container);
                io.out(env.as_bytes()).await;
                done(0)
            }
            "hostname" => {
                io.out(format!("{}\n", io.pod.name).as_bytes()).await;
                done(0)
            }
            "pwd" => {
                io.out(b"/\n").await;
                done(0)
            }
            "whoami" => {
                io.out(b"root\n").await;
                done(0)
            }
            "sleep" => {
                let secs = args
                    .first()
                    .and_then(|a| a.trim_end_matches('s').parse::<f64>().ok())
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .unwrap_or(0.0)
                    .min(86_400.0);
                tokio::time::sleep(Duration::from_secs_f64(secs)).await;
                done(0)
            }
            other => {
                io.err(format!("sh: {other}: not found\n").as_bytes()).await;
                done(127)
            }
        }
    })
}

/// The environment a container shows.
fn env_lines(pod: &Pod, container: &str) -> String {
    format!(
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nHOSTNAME={}\nKUBERNETES_SERVICE_HOST=10.96.0.1\nKUBERNETES_SERVICE_PORT=443\nKUBERNETES_PORT=tcp://10.96.0.1:443\nPOD_NAMESPACE={}\nCONTAINER_NAME={}\nHOME=/root\n",
        pod.name, pod.namespace, container
    )
}

/// Splits a shell line into words and the operators `;`, `&&`, `||`, honouring single
/// and double quotes and backslashes.
fn tokenize(line: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    let flush = |word: &mut String, in_word: &mut bool, tokens: &mut Vec<Token>| {
        if *in_word {
            tokens.push(Token::Word(std::mem::take(word)));
            *in_word = false;
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    word.push(c);
                }
            }
            '"' => {
                in_word = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => {
                            if let Some(n) = chars.next() {
                                word.push(n);
                            }
                        }
                        _ => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    word.push(n);
                }
            }
            ';' | '\n' => {
                flush(&mut word, &mut in_word, &mut tokens);
                tokens.push(Token::Seq);
            }
            '&' if chars.peek() == Some(&'&') => {
                chars.next();
                flush(&mut word, &mut in_word, &mut tokens);
                tokens.push(Token::And);
            }
            '|' if chars.peek() == Some(&'|') => {
                chars.next();
                flush(&mut word, &mut in_word, &mut tokens);
                tokens.push(Token::Or);
            }
            c if c.is_whitespace() => flush(&mut word, &mut in_word, &mut tokens),
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    flush(&mut word, &mut in_word, &mut tokens);
    tokens
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Seq,
    And,
    Or,
}

/// Runs a `sh -c` script: commands joined by `;`, `&&`, `||`; `exit` stops it.
fn run_script<'a, 'b: 'a>(script: &'a str, io: &'a mut Io<'b>) -> BoxFut<'a> {
    Box::pin(async move {
        let tokens = tokenize(script);
        let mut last = done(0);
        let mut argv: Vec<String> = Vec::new();
        let mut skip = false;
        let mut iter = tokens.into_iter().peekable();
        loop {
            let tok = iter.next();
            match tok {
                Some(Token::Word(w)) => argv.push(w),
                op => {
                    if !argv.is_empty() && !skip {
                        last = run_argv(&argv, io).await;
                        if last.exit {
                            return last;
                        }
                    }
                    argv.clear();
                    skip = match op {
                        Some(Token::And) => last.code != 0,
                        Some(Token::Or) => last.code == 0,
                        _ => false,
                    };
                    if op.is_none() {
                        return done(last.code);
                    }
                }
            }
        }
    })
}

/// An interactive shell on stdin: echoes typed bytes on a terminal, runs each line,
/// prints a prompt; ends on `exit`, Ctrl-D or the end of stdin.
async fn interactive(io: &mut Io<'_>) -> i32 {
    let prompt = b"/ # ";
    if io.tty {
        io.out(prompt).await;
    }
    let mut line: Vec<u8> = Vec::new();
    let mut last = 0;
    while let Some(data) = io.read_stdin().await {
        for &b in data.iter() {
            match b {
                0x04 if line.is_empty() => return last,
                b'\r' | b'\n' => {
                    if io.tty {
                        io.out(b"\r\n").await;
                    }
                    let text = String::from_utf8_lossy(&line).into_owned();
                    line.clear();
                    let out = run_script(&text, io).await;
                    last = out.code;
                    if out.exit {
                        return last;
                    }
                    if io.tty {
                        io.out(prompt).await;
                    }
                }
                0x7f | 0x08 => {
                    if line.pop().is_some() && io.tty {
                        io.out(b"\x08 \x08").await;
                    }
                }
                _ => {
                    line.push(b);
                    if io.tty {
                        io.out(&[b]).await;
                    }
                }
            }
        }
    }
    if !line.is_empty() {
        let text = String::from_utf8_lossy(&line).into_owned();
        last = run_script(&text, io).await.code;
    }
    last
}

/// What attaching to the container's main process shows: an interactive shell when stdin
/// is attached, else the container's output as it is produced (the followed log).
async fn attach_main(io: &mut Io<'_>) -> i32 {
    if io.stdin.is_some() {
        return interactive(io).await;
    }
    let mut n = 0u64;
    loop {
        tokio::time::sleep(io.pod.log_interval).await;
        n += 1;
        let line = logs::tick_line(io.pod, io.container, n);
        io.out(format!("{line}\n").as_bytes()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizes_quotes_and_operators() {
        let t = tokenize(r#"echo "a b" 'c;d' e\ f; exit 3 && false || true"#);
        assert_eq!(
            t,
            vec![
                Token::Word("echo".into()),
                Token::Word("a b".into()),
                Token::Word("c;d".into()),
                Token::Word("e f".into()),
                Token::Seq,
                Token::Word("exit".into()),
                Token::Word("3".into()),
                Token::And,
                Token::Word("false".into()),
                Token::Or,
                Token::Word("true".into()),
            ]
        );
    }
}
