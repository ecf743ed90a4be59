//! Standard output for humans and pipes. A reader that goes away (`| head`)
//! ends the program quietly with [`crate::EXIT_OUTPUT_CLOSED`], as other Unix
//! tools do, never with a panic or `error: Broken pipe`.

use std::io::Write;

/// Writes to stdout; exits quietly when the reader has gone.
pub fn write(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let written = out.write_fmt(args).and_then(|_| out.flush());
    if let Err(e) = written {
        closed_or_fail(e);
    }
}

/// Writes bytes to stdout; exits quietly when the reader has gone.
pub fn write_bytes(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|_| out.flush()) {
        closed_or_fail(e);
    }
}

fn closed_or_fail(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(i32::from(crate::EXIT_OUTPUT_CLOSED));
    }
    eprintln!("error: cannot write to stdout: {e}");
    std::process::exit(i32::from(crate::EXIT_FAILURE));
}

/// `print!` that ends quietly on a closed stdout.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::write(format_args!($($arg)*)) };
}

/// `println!` that ends quietly on a closed stdout.
#[macro_export]
macro_rules! outln {
    () => { $crate::output::write(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::write(format_args!("{}\n", format_args!($($arg)*))) };
}
