package qupath.fx.dialogs;

import java.util.Collection;

/** Stand-in: qupath-fxtras Dialogs (0.1.4+, bundled with QuPath 0.5 and 0.6). */
public class Dialogs {
    public static boolean showConfirmDialog(String title, String text) { throw new UnsupportedOperationException("compile-only stand-in"); }
    public static boolean showMessageDialog(String title, String message) { throw new UnsupportedOperationException("compile-only stand-in"); }
    public static boolean showYesNoDialog(String title, String text) { throw new UnsupportedOperationException("compile-only stand-in"); }
    public static String showInputDialog(String title, String message, String initialInput) { throw new UnsupportedOperationException("compile-only stand-in"); }
    public static <T> T showChoiceDialog(String title, String message, Collection<T> choices, T defaultChoice) { throw new UnsupportedOperationException("compile-only stand-in"); }
    public static void showErrorMessage(String title, String message) { throw new UnsupportedOperationException("compile-only stand-in"); }
    public static void showErrorNotification(String title, String message) { throw new UnsupportedOperationException("compile-only stand-in"); }
    public static void showWarningNotification(String title, String message) { throw new UnsupportedOperationException("compile-only stand-in"); }
    public static void showInfoNotification(String title, String message) { throw new UnsupportedOperationException("compile-only stand-in"); }
}
