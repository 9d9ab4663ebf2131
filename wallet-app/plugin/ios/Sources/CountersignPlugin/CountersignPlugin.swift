// The iOS platform of the Countersign wallet: wallet-core's Keystore on the Secure
// Enclave (P-256, `.biometryCurrentSet`: a new fingerprint or face invalidates the key),
// LocalAuthentication prompting for each signature, platform passkeys through
// ASAuthorization for the server's RP ID (associated domains: webcredentials), secure
// storage in the Keychain (this device only), and APNs registration. Thin on purpose:
// wallet-core builds and checks every JOSE structure; this file only touches the platform.
//
// Message shapes: tauri-plugin-countersign/src/bridge.rs (camelCase JSON, bytes as
// base64url without padding). A dismissed biometric or passkey sheet rejects with code
// "cancelled".

import AuthenticationServices
import Foundation
import LocalAuthentication
import Security
import SwiftRs
import Tauri
import UIKit
import WebKit

class KeyAliasArgs: Decodable { let alias: String }
class GenerateKeyArgs: Decodable { let alias: String; let requireUserVerification: Bool }
class SignArgs: Decodable { let alias: String; let message: String; let prompt: String }
class PasskeyOptionsArgs: Decodable { let optionsJson: String }
class StorageKeyArgs: Decodable { let key: String }
class StoragePutArgs: Decodable { let key: String; let value: String }

private let cancelled = "cancelled"
private let service = "app.countersign.wallet"

func b64url(_ data: Data) -> String {
    data.base64EncodedString().replacingOccurrences(of: "+", with: "-")
        .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
}

func unb64url(_ text: String) -> Data? {
    var s = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    while s.count % 4 != 0 { s += "=" }
    return Data(base64Encoded: s)
}

/// DER ECDSA (what SecKeyCreateSignature returns) to JWS's raw r || s.
func derToRaw(_ der: Data) -> Data? {
    let bytes = [UInt8](der)
    var i = 2
    if bytes.count < 8 || bytes[0] != 0x30 { return nil }
    if bytes[1] & 0x80 != 0 { i += Int(bytes[1] & 0x7f) }
    func integer() -> Data? {
        guard i + 2 <= bytes.count, bytes[i] == 0x02 else { return nil }
        let len = Int(bytes[i + 1])
        guard i + 2 + len <= bytes.count else { return nil }
        var value = Array(bytes[(i + 2)..<(i + 2 + len)])
        i += 2 + len
        while value.count > 32 && value.first == 0 { value.removeFirst() }
        guard value.count <= 32 else { return nil }
        return Data(repeating: 0, count: 32 - value.count) + Data(value)
    }
    guard let r = integer(), let s = integer() else { return nil }
    return r + s
}

class CountersignPlugin: Plugin, ASAuthorizationControllerDelegate,
    ASAuthorizationControllerPresentationContextProviding
{
    private var pendingPasskey: Invoke?

    private func privateKey(_ alias: String, context: LAContext? = nil) -> SecKey? {
        var query: [String: Any] = [
            kSecClass as String: kSecClassKey,
            kSecAttrApplicationTag as String: Data(alias.utf8),
            kSecAttrKeyType as String: kSecAttrKeyTypeECSECPrimeRandom,
            kSecReturnRef as String: true,
        ]
        if let context { query[kSecUseAuthenticationContext as String] = context }
        var item: CFTypeRef?
        guard SecItemCopyMatching(query as CFDictionary, &item) == errSecSuccess else { return nil }
        return (item as! SecKey)
    }

    private func jwk(_ key: SecKey) -> String? {
        guard let pub = SecKeyCopyPublicKey(key),
            let raw = SecKeyCopyExternalRepresentation(pub, nil) as Data?, raw.count == 65
        else { return nil }
        let x = b64url(raw.subdata(in: 1..<33))
        let y = b64url(raw.subdata(in: 33..<65))
        return "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"\(x)\",\"y\":\"\(y)\"}"
    }

    @objc public func generateKey(_ invoke: Invoke) throws {
        let args = try invoke.parseArgs(GenerateKeyArgs.self)
        deleteItem(alias: args.alias)
        var flags: SecAccessControlCreateFlags = [.privateKeyUsage]
        if args.requireUserVerification { flags.insert(.biometryCurrentSet) }
        guard let access = SecAccessControlCreateWithFlags(
            nil, kSecAttrAccessibleWhenUnlockedThisDeviceOnly, flags, nil)
        else { return invoke.reject("no access control") }
        let attributes: [String: Any] = [
            kSecAttrKeyType as String: kSecAttrKeyTypeECSECPrimeRandom,
            kSecAttrKeySizeInBits as String: 256,
            kSecAttrTokenID as String: kSecAttrTokenIDSecureEnclave,
            kSecPrivateKeyAttrs as String: [
                kSecAttrIsPermanent as String: true,
                kSecAttrApplicationTag as String: Data(args.alias.utf8),
                kSecAttrAccessControl as String: access,
            ],
        ]
        var error: Unmanaged<CFError>?
        guard let key = SecKeyCreateRandomKey(attributes as CFDictionary, &error), let jwk = jwk(key)
        else {
            return invoke.reject(error?.takeRetainedValue().localizedDescription ?? "key generation failed")
        }
        invoke.resolve(["jwk": jwk])
    }

    @objc public func publicKey(_ invoke: Invoke) throws {
        let args = try invoke.parseArgs(KeyAliasArgs.self)
        guard let key = privateKey(args.alias), let jwk = jwk(key) else {
            return invoke.reject("no key with alias \(args.alias)")
        }
        invoke.resolve(["jwk": jwk])
    }

    private func deleteItem(alias: String) {
        let query: [String: Any] = [
            kSecClass as String: kSecClassKey,
            kSecAttrApplicationTag as String: Data(alias.utf8),
        ]
        SecItemDelete(query as CFDictionary)
    }

    @objc public func deleteKey(_ invoke: Invoke) throws {
        let args = try invoke.parseArgs(KeyAliasArgs.self)
        deleteItem(alias: args.alias)
        invoke.resolve()
    }

    /// The Secure Enclave offers no key attestation to apps (App Attest attests the app,
    /// not this key); the server records none.
    @objc public func attestation(_ invoke: Invoke) throws {
        invoke.resolve(["attestation": NSNull()])
    }

    @objc public func sign(_ invoke: Invoke) throws {
        let args = try invoke.parseArgs(SignArgs.self)
        guard let message = unb64url(args.message) else { return invoke.reject("message is not base64url") }
        let context = LAContext()
        context.localizedReason = args.prompt
        context.evaluateAccessControl(
            SecAccessControlCreateWithFlags(nil, kSecAttrAccessibleWhenUnlockedThisDeviceOnly,
                [.privateKeyUsage, .biometryCurrentSet], nil)!,
            operation: .useKeySign, localizedReason: args.prompt
        ) { ok, error in
            if !ok {
                let code = (error as? LAError)?.code
                let wasCancelled = code == .userCancel || code == .appCancel || code == .systemCancel
                return invoke.reject(error?.localizedDescription ?? "not confirmed",
                    code: wasCancelled ? cancelled : nil)
            }
            guard let key = self.privateKey(args.alias, context: context) else {
                return invoke.reject("no key with alias \(args.alias)")
            }
            var signError: Unmanaged<CFError>?
            guard let der = SecKeyCreateSignature(key, .ecdsaSignatureMessageX962SHA256,
                message as CFData, &signError) as Data?, let raw = derToRaw(der)
            else {
                return invoke.reject(signError?.takeRetainedValue().localizedDescription ?? "signing failed")
            }
            invoke.resolve(["signature": b64url(raw)])
        }
    }

    // Passkeys: WebAuthn JSON in, WebAuthn JSON out, for the server's RP ID.

    private func json(_ text: String) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
    }

    @objc public func createPasskey(_ invoke: Invoke) throws {
        let args = try invoke.parseArgs(PasskeyOptionsArgs.self)
        guard let options = json(args.optionsJson), let rp = options["rp"] as? [String: Any],
            let rpId = rp["id"] as? String, let user = options["user"] as? [String: Any],
            let challenge = unb64url(options["challenge"] as? String ?? ""),
            let userId = unb64url(user["id"] as? String ?? ""), let name = user["name"] as? String
        else { return invoke.reject("not PublicKeyCredentialCreationOptionsJSON") }
        let provider = ASAuthorizationPlatformPublicKeyCredentialProvider(relyingPartyIdentifier: rpId)
        let request = provider.createCredentialRegistrationRequest(challenge: challenge, name: name, userID: userId)
        request.userVerificationPreference = .required
        run(request, invoke)
    }

    @objc public func getPasskey(_ invoke: Invoke) throws {
        let args = try invoke.parseArgs(PasskeyOptionsArgs.self)
        guard let options = json(args.optionsJson), let rpId = options["rpId"] as? String,
            let challenge = unb64url(options["challenge"] as? String ?? "")
        else { return invoke.reject("not PublicKeyCredentialRequestOptionsJSON") }
        let provider = ASAuthorizationPlatformPublicKeyCredentialProvider(relyingPartyIdentifier: rpId)
        let request = provider.createCredentialAssertionRequest(challenge: challenge)
        request.userVerificationPreference = .required
        if let allowed = options["allowCredentials"] as? [[String: Any]] {
            request.allowedCredentials = allowed.compactMap {
                unb64url($0["id"] as? String ?? "").map(ASAuthorizationPlatformPublicKeyCredentialDescriptor.init)
            }
        }
        run(request, invoke)
    }

    private func run(_ request: ASAuthorizationRequest, _ invoke: Invoke) {
        pendingPasskey = invoke
        let controller = ASAuthorizationController(authorizationRequests: [request])
        controller.delegate = self
        controller.presentationContextProvider = self
        DispatchQueue.main.async { controller.performRequests() }
    }

    func presentationAnchor(for controller: ASAuthorizationController) -> ASPresentationAnchor {
        UIApplication.shared.connectedScenes.compactMap { ($0 as? UIWindowScene)?.keyWindow }.first
            ?? ASPresentationAnchor()
    }

    func authorizationController(controller: ASAuthorizationController,
        didCompleteWithAuthorization authorization: ASAuthorization)
    {
        guard let invoke = pendingPasskey else { return }
        pendingPasskey = nil
        var response: [String: Any]
        if let reg = authorization.credential as? ASAuthorizationPlatformPublicKeyCredentialRegistration {
            response = [
                "id": b64url(reg.credentialID), "rawId": b64url(reg.credentialID), "type": "public-key",
                "response": [
                    "clientDataJSON": b64url(reg.rawClientDataJSON),
                    "attestationObject": b64url(reg.rawAttestationObject ?? Data()),
                    "transports": ["internal", "hybrid"],
                ],
                "clientExtensionResults": [String: Any](),
                "authenticatorAttachment": "platform",
            ]
        } else if let a = authorization.credential as? ASAuthorizationPlatformPublicKeyCredentialAssertion {
            response = [
                "id": b64url(a.credentialID), "rawId": b64url(a.credentialID), "type": "public-key",
                "response": [
                    "clientDataJSON": b64url(a.rawClientDataJSON),
                    "authenticatorData": b64url(a.rawAuthenticatorData),
                    "signature": b64url(a.signature),
                    "userHandle": b64url(a.userID),
                ],
                "clientExtensionResults": [String: Any](),
                "authenticatorAttachment": "platform",
            ]
        } else {
            return invoke.reject("the platform answered with another kind of credential")
        }
        guard let data = try? JSONSerialization.data(withJSONObject: response),
            let text = String(data: data, encoding: .utf8)
        else { return invoke.reject("could not encode the passkey response") }
        invoke.resolve(["responseJson": text])
    }

    func authorizationController(controller: ASAuthorizationController, didCompleteWithError error: Error) {
        guard let invoke = pendingPasskey else { return }
        pendingPasskey = nil
        let wasCancelled = (error as? ASAuthorizationError)?.code == .canceled
        invoke.reject(error.localizedDescription, code: wasCancelled ? cancelled : nil)
    }

    // Secure storage: Keychain generic passwords, this device only.

    private func storageQuery(_ key: String) -> [String: Any] {
        [kSecClass as String: kSecClassGenericPassword, kSecAttrService as String: service,
         kSecAttrAccount as String: key]
    }

    @objc public func storageGet(_ invoke: Invoke) throws {
        let args = try invoke.parseArgs(StorageKeyArgs.self)
        var query = storageQuery(args.key)
        query[kSecReturnData as String] = true
        var item: CFTypeRef?
        let status = SecItemCopyMatching(query as CFDictionary, &item)
        if status == errSecItemNotFound { return invoke.resolve(["value": NSNull()]) }
        guard status == errSecSuccess, let data = item as? Data, let value = String(data: data, encoding: .utf8)
        else { return invoke.reject("Keychain read failed (\(status))") }
        invoke.resolve(["value": value])
    }

    @objc public func storagePut(_ invoke: Invoke) throws {
        let args = try invoke.parseArgs(StoragePutArgs.self)
        SecItemDelete(storageQuery(args.key) as CFDictionary)
        var query = storageQuery(args.key)
        query[kSecValueData as String] = Data(args.value.utf8)
        query[kSecAttrAccessible as String] = kSecAttrAccessibleWhenUnlockedThisDeviceOnly
        let status = SecItemAdd(query as CFDictionary, nil)
        if status == errSecSuccess { invoke.resolve() } else { invoke.reject("Keychain write failed (\(status))") }
    }

    @objc public func storageDelete(_ invoke: Invoke) throws {
        let args = try invoke.parseArgs(StorageKeyArgs.self)
        let status = SecItemDelete(storageQuery(args.key) as CFDictionary)
        if status == errSecSuccess || status == errSecItemNotFound { invoke.resolve() }
        else { invoke.reject("Keychain delete failed (\(status))") }
    }

    // APNs: the app delegate posts the device token (see docs/wallet-app.md).

    @objc public func registerPush(_ invoke: Invoke) throws {
        var observer: NSObjectProtocol?
        observer = NotificationCenter.default.addObserver(
            forName: Notification.Name("CountersignAPNsToken"), object: nil, queue: .main
        ) { note in
            if let observer { NotificationCenter.default.removeObserver(observer) }
            if let token = note.object as? Data {
                invoke.resolve(["channel": "apns", "token": token.map { String(format: "%02x", $0) }.joined()])
            } else {
                invoke.reject("APNs registration failed")
            }
        }
        DispatchQueue.main.async { UIApplication.shared.registerForRemoteNotifications() }
    }

    /// Scanning needs a camera view; on iOS the invitation QR opens the app through its
    /// `countersign://` link from the Camera app instead.
    @objc public func scanInvitation(_ invoke: Invoke) throws {
        invoke.reject("scan the invitation with the Camera app: it opens Countersign", code: cancelled)
    }
}

@_cdecl("init_plugin_countersign")
func initPlugin() -> Plugin {
    return CountersignPlugin()
}
