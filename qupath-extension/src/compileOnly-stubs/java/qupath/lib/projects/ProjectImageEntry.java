package qupath.lib.projects;

import java.io.IOException;
import java.net.URI;
import java.util.Collection;
import qupath.lib.images.ImageData;

/** Stand-in: qupath-core ProjectImageEntry (getURIs from UriResource). */
public interface ProjectImageEntry<T> {
    String getID();
    String getImageName();
    Collection<URI> getURIs() throws IOException;
    ImageData<T> readImageData() throws IOException;
    void saveImageData(ImageData<T> imageData) throws IOException;
}
