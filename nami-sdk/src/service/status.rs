//! The utilities: `/cancelTransaction`, `/registrationStatus`, `/clearTerminalData` and the
//! health status.

use std::time::Duration;

use super::api::{
    ClearTerminalDataRequest, HealthComPort, HealthStatus, RegisteredTerminal, RegistrationStatus, StatusResponse,
};
use super::journal::EntryState;
use super::shared::{Shared, lock};
use super::targets::{COM_KEY, Target, parse_key};
use crate::session::terminal::{LinkState, Terminal};

impl Shared {
    pub(crate) fn cancel(&self, target: Option<&Target>) -> StatusResponse {
        let terminals: Vec<Terminal> = match target {
            Some(Target::Tcp(t)) => lock(&self.tcp).get(&t.key()).cloned().into_iter().collect(),
            Some(Target::Com) => self.com_connection().map(|c| c.terminal).into_iter().collect(),
            None => {
                let mut all: Vec<Terminal> = lock(&self.tcp).values().cloned().collect();
                all.extend(self.com_connection().map(|c| c.terminal));
                all
            }
        };
        let cancelled = terminals.iter().filter(|t| t.cancel()).count();
        if cancelled > 0 {
            StatusResponse { status: "Success".into(), message: "Transaction cancelled".into() }
        } else {
            StatusResponse { status: "Info".into(), message: "No active transaction to cancel".into() }
        }
    }

    pub(crate) fn registration_status(&self, target: Option<&Target>) -> RegistrationStatus {
        let tcp_status = |key: &str| {
            let registration = self.registration_of(key);
            let target = parse_key(key);
            RegistrationStatus {
                registered: registration.is_some(),
                terminal_id: registration.map(|r| r.terminal_id.to_string()),
                ip: target.as_ref().map(|t| t.ip.clone()),
                port: target.map(|t| t.port),
                com_port: None,
                terminals: None,
            }
        };
        let com_status = || {
            let registration = self.registration_of(COM_KEY);
            RegistrationStatus {
                registered: registration.is_some(),
                terminal_id: registration.map(|r| r.terminal_id.to_string()),
                ip: None,
                port: None,
                com_port: Some(self.com_connection().map(|c| c.label).unwrap_or_else(|| COM_KEY.to_owned())),
                terminals: None,
            }
        };
        match target {
            Some(Target::Tcp(t)) => tcp_status(&t.key()),
            Some(Target::Com) => com_status(),
            None => {
                let mut keys: Vec<String> = self.known_tcp().into_iter().map(|(key, _)| key).collect();
                for key in lock(&self.keymap).keys() {
                    if key != COM_KEY && !keys.contains(key) {
                        keys.push(key.clone());
                    }
                }
                keys.sort();
                let mut all: Vec<RegistrationStatus> = keys.iter().map(|k| tcp_status(k)).collect();
                if self.com_connection().is_some() || lock(&self.keymap).contains_key(COM_KEY) {
                    all.insert(0, com_status());
                }
                let mut primary =
                    all.iter().find(|s| s.registered).or(all.first()).cloned().unwrap_or(RegistrationStatus {
                        registered: false,
                        terminal_id: None,
                        ip: None,
                        port: None,
                        com_port: None,
                        terminals: None,
                    });
                primary.terminals = Some(all);
                primary
            }
        }
    }

    pub(crate) fn clear_terminal_data(&self, request: &ClearTerminalDataRequest) -> StatusResponse {
        if request.confirm_clear != Some(true) {
            return StatusResponse {
                status: "Error".into(),
                message: "Nothing cleared: send {\"confirmClear\": true} to clear the terminal data map".into(),
            };
        }
        lock(&self.keymap).clear();
        let terminals: Vec<Terminal> = lock(&self.tcp).values().cloned().collect();
        for terminal in terminals.iter().chain(self.com_connection().map(|c| c.terminal).as_ref()) {
            terminal.restore_registration(None);
        }
        if let Err(e) = self.state.clear_keymap() {
            self.warn(format!("the keymap could not be cleared on disk: {e}"));
            return StatusResponse {
                status: "Error".into(),
                message: format!("Cleared in memory, but the saved keymap could not be cleared: {e}"),
            };
        }
        tracing::info!("terminal data map cleared");
        StatusResponse { status: "Success".into(), message: "Terminal data map cleared Successfully".into() }
    }

    pub(crate) fn health_status(&self) -> HealthStatus {
        let com = self.com_connection();
        let mut registered: Vec<RegisteredTerminal> = Vec::new();
        if let Some(registration) = self.registration_of(COM_KEY) {
            registered.push(RegisteredTerminal {
                terminal_id: registration.terminal_id.to_string(),
                ip_address: None,
                port_number: None,
                com_port: Some(com.as_ref().map(|c| c.label.clone()).unwrap_or_else(|| COM_KEY.to_owned())),
            });
        }
        let mut keys: Vec<String> = lock(&self.tcp).keys().cloned().collect();
        keys.extend(lock(&self.keymap).keys().filter(|k| *k != COM_KEY).cloned());
        keys.sort();
        keys.dedup();
        for key in keys {
            if let (Some(registration), Some(target)) = (self.registration_of(&key), parse_key(&key)) {
                registered.push(RegisteredTerminal {
                    terminal_id: registration.terminal_id.to_string(),
                    ip_address: Some(target.ip),
                    port_number: Some(target.port),
                    com_port: None,
                });
            }
        }
        HealthStatus {
            status: "UP".into(),
            version: self.config.version.clone(),
            uptime: uptime_text(self.started.elapsed()),
            port: self.config.http_port.to_string(),
            memory_used_mb: memory_used_mb(),
            memory_max_mb: self.config.memory_max_mb.unwrap_or_else(memory_total_mb),
            j_serial_comm_available: true,
            // At most two seconds old: the health status is polled (dashboards, monitors) and
            // listing walks the device tree.
            available_com_ports: crate::session::ports::recent_serial_ports()
                .into_iter()
                .map(|p| HealthComPort {
                    system_name: p.device_id.rsplit('/').next().unwrap_or(&p.device_id).to_owned(),
                    description: p.description,
                    vendor_id: p.vendor_id,
                    product_id: p.product_id,
                })
                .collect(),
            com_connected: com.as_ref().is_some_and(|c| c.terminal.link_state() == LinkState::Connected),
            active_com_port: com.map(|c| c.label),
            tcp_connections: self.existing_connections(),
            registered_terminals: registered,
            unknown_outcomes: self.journal.count_in_state(EntryState::Unknown).unwrap_or(0),
            needs_attention: self.journal.count_needing_attention(self.config.recovery_attention_after).unwrap_or(0),
            state_warnings: lock(&self.warnings).clone(),
        }
    }
}

/// `2h 14m`.
fn uptime_text(elapsed: Duration) -> String {
    let minutes = elapsed.as_secs() / 60;
    format!("{}h {}m", minutes / 60, minutes % 60)
}

/// Resident memory of this process (Linux: `/proc/self/status`; 0 where unknown).
fn memory_used_mb() -> u64 {
    proc_kb("/proc/self/status", "VmRSS:").map(|kb| kb / 1024).unwrap_or(0)
}

/// The machine's memory (Linux: `/proc/meminfo`; 0 where unknown).
fn memory_total_mb() -> u64 {
    proc_kb("/proc/meminfo", "MemTotal:").map(|kb| kb / 1024).unwrap_or(0)
}

fn proc_kb(path: &str, label: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(label))?;
    line[label.len()..].split_whitespace().next()?.parse().ok()
}
