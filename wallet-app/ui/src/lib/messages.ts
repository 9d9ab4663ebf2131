// What a person is told when something fails: one clear sentence per kind and place.
// Every switch is exhaustive over ErrorKind, so a new kind fails the type check here.

import type { ErrorKind, WalletError } from './api';

function unknownText(error: WalletError): string {
  return error.message
    ? `Something went wrong in the wallet: ${error.message}`
    : 'Something went wrong in the wallet.';
}

/** The backend's own words as a sentence: capital first letter, final full stop. */
function asSentence(text: string): string {
  const trimmed = text.trim();
  if (trimmed === '') return '';
  const first = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
  return /[.!?…]$/.test(first) ? first : `${first}.`;
}

export const LOCKED_MESSAGE = 'The wallet is locked. Enter your passphrase to continue.';
export const WRONG_PASSPHRASE_MESSAGE = 'That passphrase does not open this wallet.';

function weakPassphraseText(error: WalletError): string {
  return asSentence(error.message) || 'Choose a longer passphrase.';
}

/** The device's keystore, device key or passkey provider failed. */
function platformText(error: WalletError): string {
  const detail = error.message.trim();
  return detail
    ? `This device's keystore or passkey failed: ${/[.!?…]$/.test(detail) ? detail : `${detail}.`}`
    : "This device's keystore or passkey failed.";
}

/** The kinds that mean the same wherever they happen. */
function sealedText(error: WalletError, kind: 'locked' | 'wrong_passphrase' | 'weak_passphrase'): string {
  switch (kind) {
    case 'locked':
      return LOCKED_MESSAGE;
    case 'wrong_passphrase':
      return WRONG_PASSPHRASE_MESSAGE;
    case 'weak_passphrase':
      return weakPassphraseText(error);
  }
}

/** Reading or confirming an enrollment invitation. */
export function enrollErrorMessage(error: WalletError): string {
  const kind: ErrorKind = error.kind;
  switch (kind) {
    case 'invalid':
      return 'This is not a valid invitation link. Copy the whole link from your invitation and try again.';
    case 'network':
      return 'Could not reach the server named in the invitation. Check your connection and try again.';
    case 'expired':
      return 'This invitation has expired. Ask your administrator for a new one.';
    case 'refused':
      return 'The server refused this invitation. It may have been used already: ask your administrator for a new one.';
    case 'already_decided':
      return 'This invitation was already used. Ask your administrator for a new one.';
    case 'unverified':
      return "The server's answer could not be verified. This device was not enrolled.";
    case 'cancelled':
      return 'Passkey creation was cancelled. This device was not enrolled.';
    case 'storage':
      return 'This device could not store its key. It was not enrolled.';
    case 'not_enrolled':
      return 'The enrollment was not started. Read the invitation link again.';
    case 'platform':
      return platformText(error);
    case 'locked':
    case 'wrong_passphrase':
    case 'weak_passphrase':
      return sealedText(error, kind);
    case 'unknown':
      return unknownText(error);
  }
}

/** Scanning an invitation's QR code. */
export function scanErrorMessage(error: WalletError): string {
  return error.kind === 'cancelled' ? 'Scanning was cancelled.' : enrollErrorMessage(error);
}

export const UNVERIFIED_MESSAGE =
  'This request could not be verified as coming from your server. It cannot be approved.';

/** Opening a request (show_request). */
export function loadRequestErrorMessage(error: WalletError): string {
  const kind: ErrorKind = error.kind;
  switch (kind) {
    case 'unverified':
      return UNVERIFIED_MESSAGE;
    case 'expired':
      return 'This request expired before it was decided. Nothing was approved.';
    case 'already_decided':
      return 'This request was already decided (on another device or by another approver).';
    case 'network':
      return 'Could not reach the server to open this request. Check your connection, then try again.';
    case 'not_enrolled':
      return 'This device is no longer enrolled, so it cannot open requests.';
    case 'invalid':
      return 'This request no longer exists or could not be read.';
    case 'refused':
      return 'The server refused to show this request to this device.';
    case 'cancelled':
      return 'Opening the request was cancelled.';
    case 'storage':
      return 'The wallet could not read its own storage on this device.';
    case 'platform':
      return platformText(error);
    case 'locked':
    case 'wrong_passphrase':
    case 'weak_passphrase':
      return sealedText(error, kind);
    case 'unknown':
      return unknownText(error);
  }
}

export interface DecideOutcome {
  message: string;
  /** The approve and deny buttons stay usable (nothing was sent). */
  canRetry: boolean;
}

/** Approving or denying (approve_request / deny_request). */
export function decideErrorOutcome(error: WalletError): DecideOutcome {
  const kind: ErrorKind = error.kind;
  switch (kind) {
    case 'cancelled':
      return { message: 'Passkey confirmation was cancelled. Nothing was sent.', canRetry: true };
    case 'expired':
      return {
        message: 'This request expired before it was decided. Nothing was approved.',
        canRetry: false,
      };
    case 'already_decided':
      return {
        message: 'This request was already decided (on another device or by another approver).',
        canRetry: false,
      };
    case 'network':
      return {
        message:
          'Could not reach the server. Your decision may not have been recorded: open the inbox to check; if the request is still there, decide again.',
        canRetry: false,
      };
    case 'unverified':
      return { message: UNVERIFIED_MESSAGE, canRetry: false };
    case 'refused':
      return {
        message: 'The server refused this decision. Nothing was approved.',
        canRetry: false,
      };
    case 'not_enrolled':
      return {
        message: 'This device is no longer enrolled. Nothing was sent.',
        canRetry: false,
      };
    case 'invalid':
      return {
        message: 'The wallet could not make a valid decision for this request. Nothing was approved.',
        canRetry: false,
      };
    case 'storage':
      return {
        message:
          'The wallet could not use its storage on this device. Open the inbox to check: if the request is still there, decide again.',
        canRetry: false,
      };
    case 'platform':
      // A keystore or passkey failure happens before the decision is sent, but the
      // passkey challenge may be spent already: the request has to be opened again.
      return {
        message: `${platformText(error)} Open the inbox to check: if the request is still there, open it and decide again.`,
        canRetry: false,
      };
    case 'locked':
      return {
        message: `${LOCKED_MESSAGE} Then open the inbox to check whether the request is still there.`,
        canRetry: false,
      };
    case 'wrong_passphrase':
    case 'weak_passphrase':
      return { message: sealedText(error, kind), canRetry: false };
    case 'unknown':
      return {
        message: `${unknownText(error)} Your decision may not have been recorded: open the inbox to check.`,
        canRetry: false,
      };
  }
}

/** Any other call (status, inbox, history, settings). */
export function generalErrorMessage(error: WalletError): string {
  const kind: ErrorKind = error.kind;
  switch (kind) {
    case 'network':
      return 'Could not reach the server. Check your connection; the wallet keeps retrying.';
    case 'not_enrolled':
      return 'This device is not enrolled.';
    case 'storage':
      return 'The wallet could not read its own storage on this device.';
    case 'refused':
      return 'The server refused this device. It may have been removed by an administrator.';
    case 'unverified':
      return "The server's answer could not be verified.";
    case 'invalid':
    case 'expired':
    case 'already_decided':
    case 'cancelled':
      return error.message || 'The wallet could not do that.';
    case 'platform':
      return platformText(error);
    case 'locked':
    case 'wrong_passphrase':
    case 'weak_passphrase':
      return sealedText(error, kind);
    case 'unknown':
      return unknownText(error);
  }
}

/** Unlocking, or choosing the passphrase on first run (unlock). */
export function unlockErrorMessage(error: WalletError): string {
  switch (error.kind) {
    case 'wrong_passphrase':
      return WRONG_PASSPHRASE_MESSAGE;
    case 'weak_passphrase':
      return weakPassphraseText(error);
    default:
      return generalErrorMessage(error);
  }
}
