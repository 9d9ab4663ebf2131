// The Android platform of the Countersign wallet: wallet-core's Keystore on the Android
// Keystore (StrongBox where the device has it, the TEE otherwise) with user
// authentication required for every signature, confirmed through BiometricPrompt with a
// CryptoObject; passkeys through Credential Manager; secure storage in
// EncryptedSharedPreferences; push through FCM. Thin on purpose: wallet-core builds and
// checks every JOSE structure; this file only touches the platform.
//
// Message shapes: tauri-plugin-countersign/src/bridge.rs (camelCase JSON, bytes as
// base64url without padding). A dismissed biometric or passkey sheet rejects with code
// "cancelled".
package app.countersign.plugin

import android.app.Activity
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import android.security.keystore.StrongBoxUnavailableException
import android.util.Base64
import androidx.biometric.BiometricPrompt
import androidx.core.content.ContextCompat
import androidx.credentials.CreatePublicKeyCredentialRequest
import androidx.credentials.CreatePublicKeyCredentialResponse
import androidx.credentials.CredentialManager
import androidx.credentials.GetCredentialRequest
import androidx.credentials.GetPublicKeyCredentialOption
import androidx.credentials.PublicKeyCredential
import androidx.credentials.exceptions.CreateCredentialCancellationException
import androidx.credentials.exceptions.GetCredentialCancellationException
import androidx.fragment.app.FragmentActivity
import androidx.security.crypto.EncryptedSharedPreferences
import androidx.security.crypto.MasterKey
import app.tauri.annotation.Command
import app.tauri.annotation.InvokeArg
import app.tauri.annotation.TauriPlugin
import app.tauri.plugin.Invoke
import app.tauri.plugin.JSObject
import app.tauri.plugin.Plugin
import com.google.firebase.messaging.FirebaseMessaging
import com.google.mlkit.vision.codescanner.GmsBarcodeScanning
import java.math.BigInteger
import java.security.KeyPairGenerator
import java.security.KeyStore
import java.security.Signature
import java.security.interfaces.ECPublicKey
import java.security.spec.ECGenParameterSpec
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.launch

@InvokeArg class KeyAlias { lateinit var alias: String }
@InvokeArg class GenerateKey { lateinit var alias: String; var requireUserVerification: Boolean = true }
@InvokeArg class Sign { lateinit var alias: String; lateinit var message: String; lateinit var prompt: String }
@InvokeArg class PasskeyOptions { lateinit var optionsJson: String }
@InvokeArg class StorageKey { lateinit var key: String }
@InvokeArg class StoragePut { lateinit var key: String; lateinit var value: String }

private const val KEYSTORE = "AndroidKeyStore"
private const val CANCELLED = "cancelled"

private fun b64url(bytes: ByteArray): String =
    Base64.encodeToString(bytes, Base64.URL_SAFE or Base64.NO_PADDING or Base64.NO_WRAP)

private fun unb64url(text: String): ByteArray = Base64.decode(text, Base64.URL_SAFE or Base64.NO_PADDING)

/** A coordinate as exactly 32 big-endian bytes (BigInteger may add a sign byte or drop zeros). */
private fun coordinate(n: BigInteger): ByteArray {
    val raw = n.toByteArray()
    return when {
        raw.size == 32 -> raw
        raw.size > 32 -> raw.copyOfRange(raw.size - 32, raw.size)
        else -> ByteArray(32 - raw.size) + raw
    }
}

/** DER ECDSA signature (what the Android Keystore produces) to JWS's raw r || s. */
internal fun derToRaw(der: ByteArray): ByteArray {
    var i = 2
    if (der[1].toInt() and 0x80 != 0) i += der[1].toInt() and 0x7f
    fun integer(): BigInteger {
        require(der[i].toInt() == 0x02) { "not a DER integer" }
        val len = der[i + 1].toInt()
        val value = BigInteger(1, der.copyOfRange(i + 2, i + 2 + len))
        i += 2 + len
        return value
    }
    val r = integer()
    val s = integer()
    return coordinate(r) + coordinate(s)
}

@TauriPlugin
class CountersignPlugin(private val activity: Activity) : Plugin(activity) {
    private val keystore: KeyStore = KeyStore.getInstance(KEYSTORE).apply { load(null) }

    private val storage by lazy {
        val master = MasterKey.Builder(activity).setKeyScheme(MasterKey.KeyScheme.AES256_GCM).build()
        EncryptedSharedPreferences.create(
            activity, "countersign.wallet", master,
            EncryptedSharedPreferences.PrefKeyEncryptionScheme.AES256_SIV,
            EncryptedSharedPreferences.PrefValueEncryptionScheme.AES256_GCM,
        )
    }

    private fun jwk(alias: String): String {
        val key = keystore.getCertificate(alias)?.publicKey as? ECPublicKey
            ?: throw IllegalStateException("no key with alias $alias")
        val x = b64url(coordinate(key.w.affineX))
        val y = b64url(coordinate(key.w.affineY))
        return """{"kty":"EC","crv":"P-256","x":"$x","y":"$y"}"""
    }

    private fun spec(alias: String, userVerification: Boolean, strongBox: Boolean): KeyGenParameterSpec =
        KeyGenParameterSpec.Builder(alias, KeyProperties.PURPOSE_SIGN)
            .setAlgorithmParameterSpec(ECGenParameterSpec("secp256r1"))
            .setDigests(KeyProperties.DIGEST_SHA256)
            .setUserAuthenticationRequired(userVerification)
            .apply {
                if (userVerification) {
                    // Every signature needs a fresh biometric (timeout 0), bound by CryptoObject.
                    setUserAuthenticationParameters(0, KeyProperties.AUTH_BIOMETRIC_STRONG)
                    setInvalidatedByBiometricEnrollment(true)
                }
                setIsStrongBoxBacked(strongBox)
                // Key attestation: the server may check the chain at enrollment.
                setAttestationChallenge(alias.toByteArray())
            }
            .build()

    @Command
    fun generateKey(invoke: Invoke) {
        val args = invoke.parseArgs(GenerateKey::class.java)
        try {
            if (keystore.containsAlias(args.alias)) keystore.deleteEntry(args.alias)
            val generator = KeyPairGenerator.getInstance(KeyProperties.KEY_ALGORITHM_EC, KEYSTORE)
            try {
                generator.initialize(spec(args.alias, args.requireUserVerification, strongBox = true))
                generator.generateKeyPair()
            } catch (e: StrongBoxUnavailableException) {
                generator.initialize(spec(args.alias, args.requireUserVerification, strongBox = false))
                generator.generateKeyPair()
            }
            invoke.resolve(JSObject().put("jwk", jwk(args.alias)))
        } catch (e: Exception) {
            invoke.reject(e.message ?: "key generation failed")
        }
    }

    @Command
    fun publicKey(invoke: Invoke) {
        val args = invoke.parseArgs(KeyAlias::class.java)
        try {
            invoke.resolve(JSObject().put("jwk", jwk(args.alias)))
        } catch (e: Exception) {
            invoke.reject(e.message ?: "no such key")
        }
    }

    @Command
    fun deleteKey(invoke: Invoke) {
        val args = invoke.parseArgs(KeyAlias::class.java)
        if (keystore.containsAlias(args.alias)) keystore.deleteEntry(args.alias)
        invoke.resolve(JSObject())
    }

    @Command
    fun attestation(invoke: Invoke) {
        val args = invoke.parseArgs(KeyAlias::class.java)
        val chain = keystore.getCertificateChain(args.alias)
        val joined = chain?.joinToString(",") { Base64.encodeToString(it.encoded, Base64.NO_WRAP) }
        invoke.resolve(JSObject().put("attestation", joined))
    }

    @Command
    fun sign(invoke: Invoke) {
        val args = invoke.parseArgs(Sign::class.java)
        val fragment = activity as? FragmentActivity
            ?: return invoke.reject("the activity cannot show a biometric prompt")
        val signature = try {
            Signature.getInstance("SHA256withECDSA").apply {
                initSign(keystore.getKey(args.alias, null) as java.security.PrivateKey)
            }
        } catch (e: Exception) {
            return invoke.reject(e.message ?: "no such key")
        }
        val prompt = BiometricPrompt(fragment, ContextCompat.getMainExecutor(activity),
            object : BiometricPrompt.AuthenticationCallback() {
                override fun onAuthenticationSucceeded(result: BiometricPrompt.AuthenticationResult) {
                    try {
                        val s = result.cryptoObject!!.signature!!
                        s.update(unb64url(args.message))
                        invoke.resolve(JSObject().put("signature", b64url(derToRaw(s.sign()))))
                    } catch (e: Exception) {
                        invoke.reject(e.message ?: "signing failed")
                    }
                }

                override fun onAuthenticationError(code: Int, message: CharSequence) {
                    val cancelled = code == BiometricPrompt.ERROR_USER_CANCELED ||
                        code == BiometricPrompt.ERROR_NEGATIVE_BUTTON || code == BiometricPrompt.ERROR_CANCELED
                    invoke.reject(message.toString(), if (cancelled) CANCELLED else null)
                }
            })
        activity.runOnUiThread {
            prompt.authenticate(
                BiometricPrompt.PromptInfo.Builder()
                    .setTitle(args.prompt)
                    .setAllowedAuthenticators(androidx.biometric.BiometricManager.Authenticators.BIOMETRIC_STRONG)
                    .setNegativeButtonText("Cancel")
                    .build(),
                BiometricPrompt.CryptoObject(signature),
            )
        }
    }

    @Command
    fun createPasskey(invoke: Invoke) {
        val args = invoke.parseArgs(PasskeyOptions::class.java)
        CoroutineScope(Dispatchers.Main).launch {
            try {
                val response = CredentialManager.create(activity)
                    .createCredential(activity, CreatePublicKeyCredentialRequest(args.optionsJson))
                        as CreatePublicKeyCredentialResponse
                invoke.resolve(JSObject().put("responseJson", response.registrationResponseJson))
            } catch (e: CreateCredentialCancellationException) {
                invoke.reject(e.message ?: "cancelled", CANCELLED)
            } catch (e: Exception) {
                invoke.reject(e.message ?: "passkey creation failed")
            }
        }
    }

    @Command
    fun getPasskey(invoke: Invoke) {
        val args = invoke.parseArgs(PasskeyOptions::class.java)
        CoroutineScope(Dispatchers.Main).launch {
            try {
                val result = CredentialManager.create(activity).getCredential(
                    activity, GetCredentialRequest(listOf(GetPublicKeyCredentialOption(args.optionsJson))),
                )
                val credential = result.credential as PublicKeyCredential
                invoke.resolve(JSObject().put("responseJson", credential.authenticationResponseJson))
            } catch (e: GetCredentialCancellationException) {
                invoke.reject(e.message ?: "cancelled", CANCELLED)
            } catch (e: Exception) {
                invoke.reject(e.message ?: "passkey assertion failed")
            }
        }
    }

    @Command
    fun storageGet(invoke: Invoke) {
        val args = invoke.parseArgs(StorageKey::class.java)
        invoke.resolve(JSObject().put("value", storage.getString(args.key, null)))
    }

    @Command
    fun storagePut(invoke: Invoke) {
        val args = invoke.parseArgs(StoragePut::class.java)
        // commit(), not apply(): the wallet relies on the write being durable when it returns.
        if (storage.edit().putString(args.key, args.value).commit()) invoke.resolve(JSObject())
        else invoke.reject("secure storage refused the write")
    }

    @Command
    fun storageDelete(invoke: Invoke) {
        val args = invoke.parseArgs(StorageKey::class.java)
        if (storage.edit().remove(args.key).commit()) invoke.resolve(JSObject())
        else invoke.reject("secure storage refused the delete")
    }

    @Command
    fun registerPush(invoke: Invoke) {
        FirebaseMessaging.getInstance().token
            .addOnSuccessListener { token -> invoke.resolve(JSObject().put("channel", "fcm").put("token", token)) }
            .addOnFailureListener { e -> invoke.reject(e.message ?: "FCM registration failed") }
    }

    @Command
    fun scanInvitation(invoke: Invoke) {
        GmsBarcodeScanning.getClient(activity).startScan()
            .addOnSuccessListener { code ->
                val uri = code.rawValue
                if (uri != null && uri.startsWith("countersign://enroll?")) invoke.resolve(JSObject().put("uri", uri))
                else invoke.reject("that QR code is not a Countersign invitation")
            }
            .addOnCanceledListener { invoke.reject("scanning was cancelled", CANCELLED) }
            .addOnFailureListener { e -> invoke.reject(e.message ?: "scanning failed") }
    }
}
