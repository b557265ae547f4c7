//! Windows only: `nami-httpd service install|uninstall|run` — the daemon as the Windows service
//! `NamiMiddleware` (automatic start, LocalSystem), as Nami's own middleware runs. Cross-built and
//! run under Wine's service manager by `scripts/windows.sh`. See README.md ("Windows service").
//!
//! - `install [options]` registers the service to start `nami-httpd.exe service run [options]`
//!   (the options given to `install`, e.g. `--config C:\ProgramData\Nami\nami-httpd.toml`), then
//!   starts it.
//! - `uninstall` stops it, waits until it has stopped (at most [`STOP_DEADLINE`]), and removes it.
//! - `run` is what the service control manager starts: it serves until Stop or Shutdown, then
//!   shuts down gracefully. Logs go to `nami-httpd.log` in the state directory.

use std::ffi::OsString;
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use nami_httpd::config::{RunArgs, ServiceCommand};
use windows_service::service::{
    ServiceAccess, ServiceControl, ServiceControlAccept, ServiceErrorControl, ServiceExitCode, ServiceInfo,
    ServiceStartType, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
use windows_service::{define_windows_service, service_dispatcher};

pub const SERVICE_NAME: &str = "NamiMiddleware";
const DISPLAY_NAME: &str = "Nami Local API Middleware";

/// How long `uninstall` waits for the service to stop: the daemon's shutdown grace (5 s by
/// default) and the journal's close, with room for a slow machine.
const STOP_DEADLINE: Duration = Duration::from_secs(60);

// The Windows errors a service command meets most, named in its messages.
const ERROR_ACCESS_DENIED: i32 = 5;
const ERROR_SERVICE_DOES_NOT_EXIST: i32 = 1060;
const ERROR_SERVICE_NOT_ACTIVE: i32 = 1062;
const ERROR_FAILED_SERVICE_CONTROLLER_CONNECT: i32 = 1063;
const ERROR_SERVICE_MARKED_FOR_DELETE: i32 = 1072;
const ERROR_SERVICE_EXISTS: i32 = 1073;
const ERROR_SERVICE_REQUEST_TIMEOUT: i32 = 1053;
const ERROR_SERVICE_DATABASE_LOCKED: i32 = 1055;

/// How long `install` keeps asking for the first start while the service manager's database is
/// locked (ERROR_SERVICE_DATABASE_LOCKED): the manager holds that lock briefly, e.g. just after a
/// service is created, and a start asked again a moment later succeeds.
const START_RETRY_WINDOW: Duration = Duration::from_secs(15);

/// The options of `service run`, for the service's main (which the dispatcher calls on its own
/// thread).
static RUN_ARGS: OnceLock<RunArgs> = OnceLock::new();

/// Runs a service command; the error is a sentence for the operator (what failed, the Windows
/// error, what to do).
pub fn main(command: ServiceCommand, args: RunArgs) -> Result<(), String> {
    match command {
        ServiceCommand::Install => install(),
        ServiceCommand::Uninstall => uninstall(),
        ServiceCommand::Run => {
            let _ = RUN_ARGS.set(args);
            service_dispatcher::start(SERVICE_NAME, ffi_service_main)
                .map_err(|e| explain("cannot run as the service", &e))
        }
    }
}

/// `what` failed: the Windows error by number and text, and for the common ones what to do.
/// (windows-service's own text for all of them is "IO error in winapi call".)
fn explain(what: &str, error: &windows_service::Error) -> String {
    let windows_service::Error::Winapi(io) = error else {
        return format!("{what}: {error}");
    };
    let code = io.raw_os_error().unwrap_or_default();
    let (name, advice) = match code {
        ERROR_SERVICE_EXISTS => (
            ", ERROR_SERVICE_EXISTS",
            format!(
                ". The service {SERVICE_NAME} is already installed. To change its options or upgrade \
                 nami-httpd.exe: `nami-httpd.exe service uninstall`, replace the file, then `nami-httpd.exe \
                 service install` with the options; to restart it: `net stop {SERVICE_NAME}` and `net start \
                 {SERVICE_NAME}`"
            ),
        ),
        ERROR_SERVICE_MARKED_FOR_DELETE => (
            ", ERROR_SERVICE_MARKED_FOR_DELETE",
            format!(
                ". The service {SERVICE_NAME} is being removed and goes once every program holding it lets \
                 go: close the Services console and Event Viewer, then try again"
            ),
        ),
        ERROR_SERVICE_DOES_NOT_EXIST => {
            (", ERROR_SERVICE_DOES_NOT_EXIST", format!(". The service {SERVICE_NAME} is not installed"))
        }
        ERROR_SERVICE_REQUEST_TIMEOUT => (
            ", ERROR_SERVICE_REQUEST_TIMEOUT",
            format!(
                ". The service manager stopped waiting for nami-httpd.exe to report that it runs (a busy \
                 machine or a slow disk). It stays installed and starts at boot; start it now with `net start \
                 {SERVICE_NAME}`, and see nami-httpd.log in its state directory if it does not start"
            ),
        ),
        ERROR_SERVICE_DATABASE_LOCKED => (
            ", ERROR_SERVICE_DATABASE_LOCKED",
            format!(
                ". The service manager kept its database locked for {} s. The service stays installed and \
                 starts at boot; start it now with `net start {SERVICE_NAME}`",
                START_RETRY_WINDOW.as_secs()
            ),
        ),
        ERROR_ACCESS_DENIED => {
            (", ERROR_ACCESS_DENIED", ". Run it from an elevated prompt (Run as administrator)".to_owned())
        }
        ERROR_FAILED_SERVICE_CONTROLLER_CONNECT => (
            ", ERROR_FAILED_SERVICE_CONTROLLER_CONNECT",
            ". `service run` is what the service manager starts; in a console, run nami-httpd.exe without \
             `service`"
                .to_owned(),
        ),
        _ => ("", String::new()),
    };
    // The system's text without std's " (os error N)": the number follows, with its name.
    let text = io.to_string();
    let text = text.split(" (os error").next().unwrap_or_default().trim_end_matches('.');
    format!("{what}: {text} (Windows error {code}{name}){advice}")
}

/// The command line without the words `service install`: the options to keep.
fn forwarded_options() -> Vec<OsString> {
    let mut skipped = 0;
    std::env::args_os()
        .skip(1)
        .filter(|arg| {
            if skipped < 2 && (arg == "service" || arg == "install") {
                skipped += 1;
                false
            } else {
                true
            }
        })
        .collect()
}

fn install() -> Result<(), String> {
    let manager = ServiceManager::local_computer(
        None::<&str>,
        ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE,
    )
    .map_err(|e| explain("cannot open the service manager", &e))?;
    let mut launch_arguments: Vec<OsString> = vec!["service".into(), "run".into()];
    launch_arguments.extend(forwarded_options());
    let info = ServiceInfo {
        name: SERVICE_NAME.into(),
        display_name: DISPLAY_NAME.into(),
        service_type: ServiceType::OWN_PROCESS,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path: std::env::current_exe().map_err(|e| format!("cannot find nami-httpd.exe's own path: {e}"))?,
        launch_arguments,
        dependencies: vec![],
        account_name: None, // LocalSystem
        account_password: None,
    };
    let service = manager
        .create_service(&info, ServiceAccess::CHANGE_CONFIG | ServiceAccess::START)
        .map_err(|e| explain(&format!("cannot install the service {SERVICE_NAME}"), &e))?;
    service
        .set_description("REST API for Nami payment terminals on port 9099 (nami-httpd)")
        .map_err(|e| explain("cannot set the service's description", &e))?;
    start_after_install(&service)
        .map_err(|e| explain(&format!("installed the service {SERVICE_NAME} but cannot start it"), &e))?;
    println!("installed and started the service {SERVICE_NAME}");
    Ok(())
}

/// Starts the newly created service, asking again while the service manager's database is locked
/// (a transient state; any other error is final and reported).
fn start_after_install(service: &windows_service::service::Service) -> windows_service::Result<()> {
    let deadline = Instant::now() + START_RETRY_WINDOW;
    loop {
        match service.start::<&str>(&[]) {
            Err(windows_service::Error::Winapi(io))
                if io.raw_os_error() == Some(ERROR_SERVICE_DATABASE_LOCKED) && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(500));
            }
            other => return other,
        }
    }
}

fn uninstall() -> Result<(), String> {
    let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
        .map_err(|e| explain("cannot open the service manager", &e))?;
    let service = manager
        .open_service(SERVICE_NAME, ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE)
        .map_err(|e| explain(&format!("cannot open the service {SERVICE_NAME}"), &e))?;
    let stopped = stop_and_wait(&service);
    // Removed even when it did not stop in time: Windows deletes it once it has.
    service.delete().map_err(|e| explain(&format!("cannot remove the service {SERVICE_NAME}"), &e))?;
    stopped?;
    println!("stopped and removed the service {SERVICE_NAME}");
    Ok(())
}

/// Asks the service to stop and waits until it has, at most [`STOP_DEADLINE`]: `uninstall` then
/// returns with the port free and the journal closed, so an upgrade can replace the file at once.
fn stop_and_wait(service: &windows_service::service::Service) -> Result<(), String> {
    let query = || service.query_status().map_err(|e| explain("cannot read the service's state", &e));
    if query()?.current_state == ServiceState::Stopped {
        return Ok(());
    }
    match service.stop() {
        Ok(_) => {}
        Err(windows_service::Error::Winapi(io)) if io.raw_os_error() == Some(ERROR_SERVICE_NOT_ACTIVE) => {}
        Err(e) => return Err(explain(&format!("cannot stop the service {SERVICE_NAME}"), &e)),
    }
    let deadline = Instant::now() + STOP_DEADLINE;
    while query()?.current_state != ServiceState::Stopped {
        if Instant::now() >= deadline {
            return Err(format!(
                "the service {SERVICE_NAME} did not stop within {} s; it is removed once it stops (see \
                 nami-httpd.log in its state directory)",
                STOP_DEADLINE.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

define_windows_service!(ffi_service_main, service_main);

fn service_main(_arguments: Vec<OsString>) {
    let _ = run_service();
}

fn status(state: ServiceState, exit_code: u32) -> ServiceStatus {
    ServiceStatus {
        service_type: ServiceType::OWN_PROCESS,
        current_state: state,
        controls_accepted: if state == ServiceState::Running {
            ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN
        } else {
            ServiceControlAccept::empty()
        },
        exit_code: if exit_code == 0 { ServiceExitCode::Win32(0) } else { ServiceExitCode::ServiceSpecific(exit_code) },
        checkpoint: 0,
        wait_hint: Duration::from_secs(10),
        process_id: None,
    }
}

fn run_service() -> windows_service::Result<()> {
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let stop_tx = Mutex::new(stop_tx);
    let handler = move |control| match control {
        ServiceControl::Stop | ServiceControl::Shutdown => {
            let _ = stop_tx.lock().map(|tx| tx.send(()));
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    };
    let handle = service_control_handler::register(SERVICE_NAME, handler)?;
    handle.set_service_status(status(ServiceState::Running, 0))?;
    let args = RUN_ARGS.get().cloned().unwrap_or_default();
    let stopped = move || async move {
        let _ = tokio::task::spawn_blocking(move || stop_rx.recv()).await;
    };
    let code = crate::run(&args, stopped, crate::LogTarget::StateDirFile);
    let exit_code = if code == std::process::ExitCode::SUCCESS { 0 } else { 1 };
    handle.set_service_status(status(ServiceState::Stopped, exit_code))?;
    Ok(())
}
