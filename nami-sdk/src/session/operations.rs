//! One method per common operation, each a thin builder of a [`Request`] for
//! [`Terminal::transact`]. The date is the current local time.

use super::error::TerminalError;
use super::terminal::{Terminal, TxnResult};
use crate::protocol::request::Request;
use crate::protocol::txn_type::TxnType;
use crate::protocol::values::{
    Amount, ApprovalCode, BillNumber, BillerId, EcrReference, OriginalDate, PreviousEcrNo, Rrn, SamaKeyIndex, TrsmId,
    TxnDate, VendorId, VendorKeyIndex, VendorTerminalType,
};

/// The original transaction a refund or a pre-authorisation follow-up refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Original {
    pub rrn: Rrn,
    /// `ddMMyy` of the original (not sent for refunds, whose frame has no such field).
    pub date: Option<OriginalDate>,
    pub approval_code: Option<ApprovalCode>,
}

/// SET_PARAMETER values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminalParameters {
    pub vendor_id: VendorId,
    pub vendor_terminal_type: VendorTerminalType,
    pub trsm_id: TrsmId,
    pub vendor_key_index: VendorKeyIndex,
    pub sama_key_index: SamaKeyIndex,
}

fn request(txn_type: TxnType, ecr_reference: &EcrReference) -> Request {
    let mut request = Request::new(txn_type, TxnDate::now());
    request.ecr_reference = Some(ecr_reference.clone());
    request
}

fn card_request(txn_type: TxnType, amount: Amount, ecr_reference: &EcrReference, print: bool) -> Request {
    let mut request = request(txn_type, ecr_reference);
    request.amount = Some(amount);
    request.print = Some(print);
    request
}

fn with_original(mut request: Request, original: &Original) -> Request {
    request.rrn = Some(original.rrn.clone());
    request.original_date = original.date.clone();
    request.approval_code = original.approval_code.clone();
    request
}

impl Terminal {
    pub fn purchase(
        &self,
        amount: Amount,
        ecr_reference: &EcrReference,
        print: bool,
    ) -> Result<TxnResult, TerminalError> {
        self.transact(&card_request(TxnType::Purchase, amount, ecr_reference, print))
    }

    /// Purchase with cashback (NAQD): `amount` is the purchase part.
    pub fn purchase_with_cashback(
        &self,
        amount: Amount,
        cashback: Amount,
        ecr_reference: &EcrReference,
        print: bool,
    ) -> Result<TxnResult, TerminalError> {
        let mut request = card_request(TxnType::PurchaseCashback, amount, ecr_reference, print);
        request.cashback_amount = Some(cashback);
        self.transact(&request)
    }

    pub fn refund(
        &self,
        amount: Amount,
        original: &Original,
        ecr_reference: &EcrReference,
        print: bool,
    ) -> Result<TxnResult, TerminalError> {
        self.transact(&with_original(card_request(TxnType::Refund, amount, ecr_reference, print), original))
    }

    pub fn pre_authorization(
        &self,
        amount: Amount,
        ecr_reference: &EcrReference,
        print: bool,
    ) -> Result<TxnResult, TerminalError> {
        self.transact(&card_request(TxnType::PreAuthorization, amount, ecr_reference, print))
    }

    /// Completes (captures) a pre-authorisation; `partial` marks a partial capture.
    pub fn pre_auth_completion(
        &self,
        amount: Amount,
        original: &Original,
        partial: bool,
        ecr_reference: &EcrReference,
        print: bool,
    ) -> Result<TxnResult, TerminalError> {
        let mut request =
            with_original(card_request(TxnType::PreAuthCompletion, amount, ecr_reference, print), original);
        request.partial_flag = Some(partial);
        self.transact(&request)
    }

    pub fn pre_auth_extension(
        &self,
        original: &Original,
        ecr_reference: &EcrReference,
        print: bool,
    ) -> Result<TxnResult, TerminalError> {
        let mut request = with_original(request(TxnType::PreAuthExtension, ecr_reference), original);
        request.print = Some(print);
        self.transact(&request)
    }

    /// Voids a pre-authorisation of `original_amount`.
    pub fn pre_auth_void(
        &self,
        original_amount: Amount,
        original: &Original,
        ecr_reference: &EcrReference,
        print: bool,
    ) -> Result<TxnResult, TerminalError> {
        self.transact(&with_original(
            card_request(TxnType::PreAuthVoid, original_amount, ecr_reference, print),
            original,
        ))
    }

    pub fn cash_advance(
        &self,
        amount: Amount,
        ecr_reference: &EcrReference,
        print: bool,
    ) -> Result<TxnResult, TerminalError> {
        self.transact(&card_request(TxnType::CashAdvance, amount, ecr_reference, print))
    }

    /// Reverses the terminal's last transaction.
    pub fn reversal(&self, ecr_reference: &EcrReference, print: bool) -> Result<TxnResult, TerminalError> {
        let mut request = request(TxnType::Reversal, ecr_reference);
        request.print = Some(print);
        self.transact(&request)
    }

    /// End-of-day settlement.
    pub fn reconciliation(&self, ecr_reference: &EcrReference, print: bool) -> Result<TxnResult, TerminalError> {
        let mut request = request(TxnType::Reconciliation, ecr_reference);
        request.print = Some(print);
        self.transact(&request)
    }

    /// Asks the terminal for an earlier transaction by its ECR reference (the way to learn the
    /// outcome of a payment in doubt, D11).
    pub fn duplicate(
        &self,
        previous: &PreviousEcrNo,
        ecr_reference: &EcrReference,
    ) -> Result<TxnResult, TerminalError> {
        let mut request = request(TxnType::Duplicate, ecr_reference);
        request.previous_ecr_no = Some(previous.clone());
        self.transact(&request)
    }

    pub fn check_status(&self, ecr_reference: &EcrReference) -> Result<TxnResult, TerminalError> {
        self.transact(&request(TxnType::CheckStatus, ecr_reference))
    }

    /// Detail report (running total).
    pub fn detail_report(&self, ecr_reference: &EcrReference) -> Result<TxnResult, TerminalError> {
        self.transact(&request(TxnType::DetailReport, ecr_reference))
    }

    /// One page of the summary report: `attempt` 0 first, then 1..N.
    pub fn summary_report(&self, attempt: u16, ecr_reference: &EcrReference) -> Result<TxnResult, TerminalError> {
        let mut request = request(TxnType::SummaryReport, ecr_reference);
        request.request_attempt_no = Some(attempt);
        self.transact(&request)
    }

    pub fn snapshot_total(&self, ecr_reference: &EcrReference) -> Result<TxnResult, TerminalError> {
        self.transact(&request(TxnType::SnapshotTotal, ecr_reference))
    }

    pub fn parameter_download(&self, ecr_reference: &EcrReference) -> Result<TxnResult, TerminalError> {
        self.transact(&request(TxnType::ParameterDownload, ecr_reference))
    }

    pub fn partial_download(&self, ecr_reference: &EcrReference) -> Result<TxnResult, TerminalError> {
        self.transact(&request(TxnType::PartialDownload, ecr_reference))
    }

    pub fn get_parameters(&self, ecr_reference: &EcrReference) -> Result<TxnResult, TerminalError> {
        self.transact(&request(TxnType::GetParameter, ecr_reference))
    }

    pub fn set_parameters(
        &self,
        parameters: &TerminalParameters,
        ecr_reference: &EcrReference,
    ) -> Result<TxnResult, TerminalError> {
        let mut request = request(TxnType::SetParameter, ecr_reference);
        request.vendor_id = Some(parameters.vendor_id.clone());
        request.vendor_terminal_type = Some(parameters.vendor_terminal_type.clone());
        request.trsm_id = Some(parameters.trsm_id.clone());
        request.vendor_key_index = Some(parameters.vendor_key_index.clone());
        request.sama_key_index = Some(parameters.sama_key_index.clone());
        self.transact(&request)
    }

    pub fn bill_payment(
        &self,
        amount: Amount,
        biller_id: &BillerId,
        bill_number: &BillNumber,
        ecr_reference: &EcrReference,
        print: bool,
    ) -> Result<TxnResult, TerminalError> {
        let mut request = card_request(TxnType::BillPayment, amount, ecr_reference, print);
        request.biller_id = Some(biller_id.clone());
        request.bill_number = Some(bill_number.clone());
        self.transact(&request)
    }
}
