//! A process for the service's crash test: opens a `Service` on a state directory and starts one
//! purchase against a terminal, then waits for the reply (the test kills it with SIGKILL before
//! the reply comes).
//!
//! Usage: `service_victim STATE_DIR HOST:PORT ECR_REFERENCE AMOUNT`

use std::time::Duration;

use nami_sdk::{Service, ServiceConfig};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [state_dir, address, ecr, amount] = args.as_slice() else {
        eprintln!("usage: service_victim STATE_DIR HOST:PORT ECR_REFERENCE AMOUNT");
        std::process::exit(2);
    };
    let (host, port) = address.rsplit_once(':').expect("HOST:PORT");
    let mut config = ServiceConfig::new(state_dir);
    // The purchase is the only exchange: no background reconnect competes with it.
    config.restore_connections = false;
    config.recovery_interval = Duration::from_secs(3600);
    let service = Service::open(config).expect("service opens");
    println!("ready");
    let body = serde_json::json!({
        "tcpipcomData": {"ip": host, "port": port.parse::<u16>().expect("port")},
        "paymentRequest": {"txnType": "PURCHASE", "amount": amount, "ecrReferenceNo": ecr},
    });
    println!("{}", service.call("/performTransactionTCPIP", &body.to_string()));
}
