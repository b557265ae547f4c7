//! Response codes (docs/protocol.md §6) and the approval rule per response class (D9). Approval is
//! decided by the code, never by the message text.

use super::txn_type::ResponseClass;

/// mada / ISO 8583:1993 action codes and Nami's ECR-level codes, with their meanings.
pub const RESPONSE_CODES: &[(&str, &str)] = &[
    ("00", "Approved (report)"),
    ("000", "Approved"),
    ("001", "Honour with identification"),
    ("002", "Approved for partial amount"),
    ("003", "Approved (VIP)"),
    ("004", "Approved, update track 3"),
    ("005", "Approved, account type specified by issuer"),
    ("006", "Approved partial, account type specified by issuer"),
    ("007", "Approved, update ICC"),
    ("060", "Approved in stand-in processing"),
    ("086", "No reason to decline"),
    ("087", "Offline approved, chip only"),
    ("089", "Unable to go online, offline approved"),
    ("100", "Do not honour"),
    ("101", "Expired card"),
    ("102", "Suspected fraud"),
    ("103", "Card acceptor contact acquirer"),
    ("104", "Restricted card"),
    ("105", "Card acceptor call acquirer's security department"),
    ("106", "Allowable PIN tries exceeded"),
    ("107", "Refer to card issuer"),
    ("108", "Refer to card issuer's special conditions"),
    ("109", "Invalid merchant"),
    ("110", "Invalid amount"),
    ("111", "Invalid card number"),
    ("112", "PIN data required"),
    ("113", "Unacceptable fee"),
    ("114", "No account of type requested"),
    ("115", "Requested function not supported"),
    ("116", "Not sufficient funds"),
    ("117", "Incorrect PIN"),
    ("118", "No card record"),
    ("119", "Transaction not permitted to cardholder"),
    ("120", "Transaction not permitted to terminal"),
    ("121", "Exceeds withdrawal amount limit"),
    ("122", "Security violation"),
    ("123", "Exceeds withdrawal frequency limit"),
    ("124", "Violation of law"),
    ("125", "Card not effective"),
    ("126", "Invalid PIN block"),
    ("127", "PIN length error"),
    ("128", "PIN key sync error"),
    ("129", "Suspected counterfeit card"),
    ("184", "Incorrect CVV"),
    ("187", "Original transaction not found"),
    ("188", "Offline declined"),
    ("195", "Individual transaction amount exceeds limit"),
    ("196", "Cumulative contactless limit exceeded"),
    ("197", "Card differs from original transaction"),
    ("198", "Refund amount exceeds original"),
    ("199", "Outside mada time limit"),
    ("200", "Pick up card"),
    ("201", "Pick up: expired card"),
    ("202", "Pick up: suspected fraud"),
    ("203", "Pick up: card acceptor contact acquirer"),
    ("204", "Pick up: restricted card"),
    ("205", "Pick up: call acquirer's security department"),
    ("206", "Pick up: allowable PIN tries exceeded"),
    ("207", "Pick up: special conditions"),
    ("208", "Pick up: lost card"),
    ("209", "Pick up: stolen card"),
    ("210", "Pick up: suspected counterfeit card"),
    ("300", "File action successful"),
    ("301", "File action not supported by receiver"),
    ("302", "Unable to locate record on file"),
    ("303", "Duplicate record, old record replaced"),
    ("304", "Field edit error"),
    ("305", "File locked out"),
    ("306", "File action not successful"),
    ("307", "Format error"),
    ("308", "Duplicate, new record rejected"),
    ("309", "Unknown file"),
    ("400", "Accepted (reversal)"),
    ("480", "Original transaction not found"),
    ("481", "Original transaction found but declined"),
    ("500", "Reconciled, in balance"),
    ("501", "Reconciled, out of balance"),
    ("502", "Amount not reconciled, totals provided"),
    ("503", "Totals for reconciliation not available"),
    ("504", "Not reconciled, totals provided"),
    ("600", "Accepted (administrative)"),
    ("601", "Not able to trace back original transaction"),
    ("602", "Invalid reference number"),
    ("603", "Reference number and PAN incompatible"),
    ("604", "POS photograph not available"),
    ("605", "Item supplied"),
    ("606", "Request cannot be fulfilled: required documentation not available"),
    ("700", "Accepted (fee collection)"),
    ("800", "Registration success"),
    ("888", "Unknown error"),
    ("900", "Advice acknowledged, no financial liability"),
    ("901", "Advice acknowledged, with financial liability"),
    ("902", "Invalid transaction"),
    ("903", "Re-enter transaction"),
    ("904", "Format error"),
    ("905", "Acquirer not supported by switch"),
    ("906", "Cutover in process"),
    ("907", "Card issuer or switch inoperative"),
    ("908", "Transaction destination cannot be found for routing"),
    ("909", "System malfunction"),
    ("910", "Card issuer signed off"),
    ("911", "Card issuer timed out"),
    ("912", "Card issuer unavailable"),
    ("913", "Duplicate transmission"),
    ("914", "Cannot trace back to original transaction"),
    ("915", "Reconciliation cutover or checkpoint error"),
    ("916", "MAC incorrect"),
    ("917", "MAC key sync error"),
    ("918", "No communication keys available"),
    ("919", "Encryption key sync error"),
    ("920", "Security software error, try again"),
    ("921", "Security software error, no action"),
    ("922", "Message number out of sequence"),
    ("923", "Request in progress"),
    ("940", "Unknown terminal"),
    ("950", "Violation of business arrangement"),
    ("1003", "Do register: the ECR must register first"),
    ("1004", "Already registered"),
    ("1008", "Terminal not registered"),
];

/// The meaning of a response code, if it is known.
pub fn meaning(code: &str) -> Option<&'static str> {
    RESPONSE_CODES.iter().find(|(c, _)| *c == code.trim()).map(|(_, m)| *m)
}

/// Terminal codes that mean "register first" (D8): the cached registration is dropped.
pub fn requires_registration(code: &str) -> bool {
    matches!(code.trim(), "1003" | "1008")
}

impl ResponseClass {
    /// Whether `code` approves a reply of this class (D9).
    pub fn approves(self, code: &str) -> bool {
        let code = code.trim();
        let purchase_family = || code.len() == 3 && code.starts_with('0') && code.bytes().all(|b| b.is_ascii_digit());
        match self {
            ResponseClass::Financial | ResponseClass::FinancialCashback => purchase_family(),
            ResponseClass::Reversal => code == "400",
            ResponseClass::Reconciliation => matches!(code, "500" | "501"),
            ResponseClass::FileAction => code == "300",
            ResponseClass::Parameters => matches!(code, "300" | "000" | "00"),
            ResponseClass::Register => matches!(code, "800" | "1004"),
            ResponseClass::Session => matches!(code, "800" | "000" | "00"),
            ResponseClass::Report | ResponseClass::SummaryReport => matches!(code, "00" | "000"),
            // A duplicate is judged by the transaction it repeats (see `Response::approved`).
            ResponseClass::Repeat => purchase_family() || code == "00",
            ResponseClass::Status => matches!(code, "000" | "00"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_listed_once() {
        for (code, _) in RESPONSE_CODES {
            assert_eq!(RESPONSE_CODES.iter().filter(|(c, _)| c == code).count(), 1, "{code}");
        }
        assert_eq!(meaning("116"), Some("Not sufficient funds"));
        assert_eq!(meaning("1003"), Some("Do register: the ECR must register first"));
        assert_eq!(meaning("777"), None);
    }

    #[test]
    fn approval_follows_the_class() {
        assert!(ResponseClass::Financial.approves("000"));
        assert!(ResponseClass::Financial.approves("087"));
        assert!(!ResponseClass::Financial.approves("100"));
        assert!(!ResponseClass::Financial.approves("400"));
        assert!(ResponseClass::Reversal.approves("400"));
        assert!(!ResponseClass::Reversal.approves("000"));
        assert!(ResponseClass::Reconciliation.approves("501"));
        assert!(ResponseClass::Register.approves("1004"));
        assert!(!ResponseClass::Register.approves("1003"));
        assert!(ResponseClass::Report.approves("00"));
        assert!(ResponseClass::FileAction.approves("300"));
    }
}
