//! Windows only: `nami-httpd service install|uninstall|run` — the daemon as the Windows service
//! `NamiMiddleware` (automatic start, LocalSystem), as Nami's own middleware runs. Not compiled
//! on the project's Linux CI; kept small. See README.md ("Windows service").
//!
//! - `install [options]` registers the service to start `nami-httpd.exe service run [options]`
//!   (the options given to `install`, e.g. `--config C:\ProgramData\Nami\nami-httpd.toml`), then
//!   starts it.
//! - `uninstall` stops it and removes it.
//! - `run` is what the service control manager starts: it serves until Stop or Shutdown, then
//!   shuts down gracefully. Logs go to `nami-httpd.log` in the state directory.

use std::ffi::OsString;
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::Duration;

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

/// The options of `service run`, for the service's main (which the dispatcher calls on its own
/// thread).
static RUN_ARGS: OnceLock<RunArgs> = OnceLock::new();

pub fn main(command: ServiceCommand, args: RunArgs) -> windows_service::Result<()> {
    match command {
        ServiceCommand::Install => install(),
        ServiceCommand::Uninstall => uninstall(),
        ServiceCommand::Run => {
            let _ = RUN_ARGS.set(args);
            service_dispatcher::start(SERVICE_NAME, ffi_service_main)
        }
    }
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

fn install() -> windows_service::Result<()> {
    let manager = ServiceManager::local_computer(
        None::<&str>,
        ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE,
    )?;
    let mut launch_arguments: Vec<OsString> = vec!["service".into(), "run".into()];
    launch_arguments.extend(forwarded_options());
    let info = ServiceInfo {
        name: SERVICE_NAME.into(),
        display_name: DISPLAY_NAME.into(),
        service_type: ServiceType::OWN_PROCESS,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path: std::env::current_exe().map_err(windows_service::Error::Winapi)?,
        launch_arguments,
        dependencies: vec![],
        account_name: None, // LocalSystem
        account_password: None,
    };
    let service = manager.create_service(&info, ServiceAccess::CHANGE_CONFIG | ServiceAccess::START)?;
    service.set_description("REST API for Nami payment terminals on port 9099 (nami-httpd)")?;
    service.start::<&str>(&[])?;
    println!("installed and started the service {SERVICE_NAME}");
    Ok(())
}

fn uninstall() -> windows_service::Result<()> {
    let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)?;
    let service = manager
        .open_service(SERVICE_NAME, ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE)?;
    if service.query_status()?.current_state != ServiceState::Stopped {
        service.stop()?;
    }
    service.delete()?;
    println!("removed the service {SERVICE_NAME} (Windows deletes it once every handle is closed)");
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
