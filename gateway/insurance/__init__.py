"""Medical-insurance real-time settlement over the national NHSA interface.

    envelope.py     msgid, request envelope, answers
    signing.py      pluggable request signers (HMAC default, ECDSA, module:factory plug-ins)
    client.py       the HTTP client: sign-in and sign_no renewal, unknown outcomes
    eligibility.py  the cases where real-time settlement is impossible, with reason codes
    money.py        Decimal rounding and the per-item view of a settlement
    state.py        settlement state, per-visit lock, idempotency keys (Redis)
    settlement.py   the orchestration: preview, settle, cancel, unknown-outcome resolution
    fhir.py         Coverage, Claim, ClaimResponse for the regional platform
    visits.py       the canonical visit kept for the cashier (written by the route stage)

The public surface is ``gateway.insurance.settlement.Settlements`` (and its
``SettlementRequest``); this package imports nothing itself, so the route stage can use
``visits`` without loading the client.
"""
