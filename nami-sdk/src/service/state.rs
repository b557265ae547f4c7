//! What the service remembers across a restart besides the journal: the registration keymap
//! (which terminal completed REGISTER, with which terminal ID and cash register number) and the
//! active connections (TCP terminals; the last COM settings with the device's VID/PID).
//!
//! It lives in its own file (`state.sqlite`), so a damaged keymap never costs the journal.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, params};

use super::db::{self, StoreError, now_text};
use crate::protocol::values::{CashRegisterNo, TerminalId};
use crate::session::link::{Parity, SerialSettings};
use crate::session::terminal::Registration;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS keymap (
    terminal TEXT PRIMARY KEY,
    terminal_id TEXT NOT NULL,
    cash_register_no TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS connections (
    terminal TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    host TEXT,
    port INTEGER,
    device TEXT,
    port_number INTEGER,
    baud_rate INTEGER,
    parity INTEGER,
    data_bits INTEGER,
    stop_bits INTEGER,
    vendor_id INTEGER,
    product_id INTEGER,
    updated_at TEXT NOT NULL
);
";

/// A connection to re-open at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SavedConnection {
    Tcp {
        host: String,
        port: u16,
    },
    Com {
        /// The device path (`/dev/ttyACM0`, `COM3`).
        device: String,
        /// The REST port number, if the connection was made by number.
        port_number: Option<u32>,
        settings: SerialSettings,
        /// USB IDs of the device, to find it again under another name (0 when unknown).
        vendor_id: u16,
        product_id: u16,
    },
}

impl SavedConnection {
    /// The service key: `ip:port`, or `COM`.
    pub fn key(&self) -> String {
        match self {
            SavedConnection::Tcp { host, port } => format!("{host}:{port}"),
            SavedConnection::Com { .. } => super::COM_KEY.to_owned(),
        }
    }
}

pub struct StateStore {
    connection: Mutex<Connection>,
}

impl StateStore {
    pub fn open(path: &Path) -> Result<(StateStore, Option<String>), StoreError> {
        // A few pages (the keymap and the saved connections), read once at start.
        let opened = db::open(path, SCHEMA, &[], 128)?;
        Ok((StateStore { connection: Mutex::new(opened.connection) }, opened.warning))
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.connection.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The keymap. Rows that no longer parse are skipped (and logged), never fatal.
    pub fn load_keymap(&self) -> rusqlite::Result<Vec<(String, Registration)>> {
        let connection = self.lock();
        let mut statement = connection.prepare("SELECT terminal, terminal_id, cash_register_no FROM keymap")?;
        let rows = statement
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (terminal, terminal_id, register) = row?;
            match (TerminalId::parse(&terminal_id), CashRegisterNo::parse(&register)) {
                (Ok(terminal_id), Ok(cash_register_no)) => {
                    out.push((terminal, Registration { terminal_id, cash_register_no }))
                }
                _ => tracing::warn!(%terminal, "unreadable keymap row skipped"),
            }
        }
        Ok(out)
    }

    pub fn put_registration(&self, terminal: &str, registration: &Registration) -> rusqlite::Result<()> {
        self.lock().execute(
            "INSERT INTO keymap (terminal, terminal_id, cash_register_no, updated_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (terminal) DO UPDATE SET terminal_id = excluded.terminal_id, \
             cash_register_no = excluded.cash_register_no, updated_at = excluded.updated_at",
            params![terminal, registration.terminal_id.as_str(), registration.cash_register_no.as_str(), now_text()],
        )?;
        Ok(())
    }

    /// A silent re-register returned a (possibly new) terminal ID for a known registration.
    pub fn update_terminal_id(&self, terminal: &str, terminal_id: &str) -> rusqlite::Result<()> {
        self.lock().execute(
            "UPDATE keymap SET terminal_id = ?2, updated_at = ?3 WHERE terminal = ?1",
            params![terminal, terminal_id, now_text()],
        )?;
        Ok(())
    }

    pub fn remove_registration(&self, terminal: &str) -> rusqlite::Result<()> {
        self.lock().execute("DELETE FROM keymap WHERE terminal = ?1", params![terminal])?;
        Ok(())
    }

    pub fn clear_keymap(&self) -> rusqlite::Result<()> {
        self.lock().execute("DELETE FROM keymap", [])?;
        Ok(())
    }

    pub fn load_connections(&self) -> rusqlite::Result<Vec<SavedConnection>> {
        let connection = self.lock();
        let mut statement = connection.prepare(
            "SELECT kind, host, port, device, port_number, baud_rate, parity, data_bits, stop_bits, vendor_id, \
             product_id, terminal FROM connections ORDER BY terminal",
        )?;
        let rows = statement.query_map([], |r| {
            let kind: String = r.get(0)?;
            let terminal: String = r.get(11)?;
            let saved = if kind == "tcp" {
                let host: Option<String> = r.get(1)?;
                let port: Option<u16> = r.get(2)?;
                host.zip(port).map(|(host, port)| SavedConnection::Tcp { host, port })
            } else {
                let device: Option<String> = r.get(3)?;
                let settings = (|| {
                    let baud: u32 = r.get::<_, Option<u32>>(5).ok()??;
                    let parity = Parity::from_code(r.get::<_, Option<i64>>(6).ok()??).ok()?;
                    let data: u8 = r.get::<_, Option<u8>>(7).ok()??;
                    let stop: u8 = r.get::<_, Option<u8>>(8).ok()??;
                    SerialSettings::new(baud, data, parity, stop).ok()
                })();
                device.zip(settings).map(|(device, settings)| SavedConnection::Com {
                    device,
                    port_number: r.get(4).ok().flatten(),
                    settings,
                    vendor_id: r.get::<_, Option<u16>>(9).ok().flatten().unwrap_or(0),
                    product_id: r.get::<_, Option<u16>>(10).ok().flatten().unwrap_or(0),
                })
            };
            if saved.is_none() {
                tracing::warn!(%terminal, "unreadable connection row skipped");
            }
            Ok(saved)
        })?;
        let mut out = Vec::new();
        for row in rows {
            out.extend(row?);
        }
        Ok(out)
    }

    pub fn save_connection(&self, saved: &SavedConnection) -> rusqlite::Result<()> {
        let connection = self.lock();
        let sql = "INSERT OR REPLACE INTO connections (terminal, kind, host, port, device, port_number, baud_rate, \
                   parity, data_bits, stop_bits, vendor_id, product_id, updated_at) \
                   VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";
        match saved {
            SavedConnection::Tcp { host, port } => connection.execute(
                sql,
                params![
                    saved.key(),
                    "tcp",
                    host,
                    port,
                    None::<String>,
                    None::<u32>,
                    None::<u32>,
                    None::<u8>,
                    None::<u8>,
                    None::<u8>,
                    None::<u16>,
                    None::<u16>,
                    now_text()
                ],
            )?,
            SavedConnection::Com { device, port_number, settings, vendor_id, product_id } => connection.execute(
                sql,
                params![
                    saved.key(),
                    "com",
                    None::<String>,
                    None::<u16>,
                    device,
                    port_number,
                    settings.baud_rate,
                    settings.parity.code(),
                    settings.data_bits,
                    settings.stop_bits,
                    vendor_id,
                    product_id,
                    now_text()
                ],
            )?,
        };
        Ok(())
    }

    pub fn remove_connection(&self, terminal: &str) -> rusqlite::Result<()> {
        self.lock().execute("DELETE FROM connections WHERE terminal = ?1", params![terminal])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration(id: &str) -> Registration {
        Registration {
            terminal_id: TerminalId::parse(id).unwrap(),
            cash_register_no: CashRegisterNo::parse("12345678").unwrap(),
        }
    }

    #[test]
    fn keymap_and_connections_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite");
        {
            let (state, _) = StateStore::open(&path).unwrap();
            state.put_registration("10.0.0.5:8888", &registration("8184000200000077")).unwrap();
            state.put_registration(super::super::COM_KEY, &registration("8184000200000078")).unwrap();
            state.update_terminal_id(super::super::COM_KEY, "8184000200000079").unwrap();
            state.save_connection(&SavedConnection::Tcp { host: "10.0.0.5".into(), port: 8888 }).unwrap();
            state
                .save_connection(&SavedConnection::Com {
                    device: "/dev/ttyACM0".into(),
                    port_number: Some(0),
                    settings: SerialSettings::default(),
                    vendor_id: 6018,
                    product_id: 36865,
                })
                .unwrap();
        }
        let (state, warning) = StateStore::open(&path).unwrap();
        assert!(warning.is_none());
        let mut keymap = state.load_keymap().unwrap();
        keymap.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(keymap[0].0, "10.0.0.5:8888");
        assert_eq!(keymap[1].1.terminal_id.as_str(), "8184000200000079");
        let connections = state.load_connections().unwrap();
        assert_eq!(connections.len(), 2);
        assert!(connections.iter().any(|c| matches!(c, SavedConnection::Com { vendor_id: 6018, .. })));
        state.clear_keymap().unwrap();
        assert!(state.load_keymap().unwrap().is_empty());
        state.remove_connection("10.0.0.5:8888").unwrap();
        assert_eq!(state.load_connections().unwrap().len(), 1);
    }
}
